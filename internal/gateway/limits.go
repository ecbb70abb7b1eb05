package gateway

import "github.com/ringd/ringd/internal/jsondepth"

// MaxFrameDepth bounds the nesting of a client frame. No request nests
// beyond a few levels; encoding/json alone would allow 10000.
const MaxFrameDepth = 32

// overDepth reports whether the JSON text b nests deeper than limit, with
// one pass over the bytes and no allocation, so a frame of 64 KiB of "["
// costs nothing before it is refused.
func overDepth(b []byte, limit int) bool { return jsondepth.Exceeds(b, limit) >= 0 }
