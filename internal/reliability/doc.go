// Package reliability holds ringd's crash and fault tests: they build
// cmd/ringd, run it (and the APNs simulator, `ringd apns-sim`) as separate
// processes, break them on purpose (SIGKILL, SIGTERM, a database cut, a
// failing disk) and check through the public Go SDK and the simulator's
// control API that no accepted push is lost and no dead call rings.
// docs/reliability.md lists the scenarios, their commands and what they
// showed.
package reliability
