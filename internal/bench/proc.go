package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTick = 100

// cpuTime reads utime+stime of pid (all its threads) from /proc.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// memStatus reads VmRSS and VmHWM (peak RSS) of pid in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &hwm
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			*dst = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// ioCounts is the part of /proc/<pid>/io that counts system calls and
// storage writes. Unlike CPU time, these counts do not depend on how busy
// the machine is, so they compare builds on a noisy machine.
type ioCounts struct {
	readCalls, writeCalls int64 // syscr, syscw: read and write system calls, sockets included
	storageWrites         int64 // write_bytes: bytes sent towards storage
	ok                    bool
}

// readIO reads pid's I/O counters; ok is false where /proc/<pid>/io is
// missing or not readable.
func readIO(pid int) ioCounts {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return ioCounts{}
	}
	var c ioCounts
	found := 0
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "syscr":
			dst = &c.readCalls
		case "syscw":
			dst = &c.writeCalls
		case "write_bytes":
			dst = &c.storageWrites
		default:
			continue
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			*dst = n
			found++
		}
	}
	c.ok = found == 3
	return c
}

// procSample is one reading of a process.
type procSample struct {
	at       time.Time // when it was read, also when ok is false
	cpu      time.Duration
	rss, hwm int64
	io       ioCounts
	ok       bool
}

// addIO reports the system calls and storage writes between p0 and p1 per
// unit (a push, an invite, a call), when both readings have them.
func addIO(r *Result, p0, p1 procSample, n int64, unit string) {
	if n <= 0 {
		return
	}
	if !p0.io.ok || !p1.io.ok {
		r.note("no readings of /proc/<pid>/io (task I/O accounting off, or ringd runs as another user): syscalls and storage writes left out")
		return
	}
	per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	r.add("ringd write syscalls per "+unit, per(p0.io.writeCalls, p1.io.writeCalls), "calls", "syscw delta of /proc/<pid>/io ÷ "+plural(unit)+" (sockets included)")
	r.add("ringd read syscalls per "+unit, per(p0.io.readCalls, p1.io.readCalls), "calls", "syscr delta ÷ "+plural(unit)+" (sockets included)")
	r.add("ringd storage writes per "+unit, per(p0.io.storageWrites, p1.io.storageWrites)/1024, "KiB", "write_bytes delta ÷ "+plural(unit)+" (database, WAL and checkpoints; cancelled_write_bytes not subtracted)")
}

func sampleProc(pid int) procSample {
	at := time.Now()
	if pid <= 0 {
		return procSample{at: at}
	}
	c, err := cpuTime(pid)
	if err != nil {
		return procSample{at: at}
	}
	r, h, err := memStatus(pid)
	if err != nil {
		return procSample{at: at}
	}
	return procSample{at: at, cpu: c, rss: r, hwm: h, io: readIO(pid), ok: true}
}

// plural names more than one unit of work ("push" → "pushes").
func plural(unit string) string {
	if strings.HasSuffix(unit, "sh") {
		return unit + "es"
	}
	return unit + "s"
}
