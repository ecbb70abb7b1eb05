//go:build !linux

package bench

func setBindAddressNoPort(uintptr) error { return nil }
