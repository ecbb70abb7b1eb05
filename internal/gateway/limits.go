package gateway

// MaxFrameDepth bounds the nesting of a client frame. No request nests
// beyond a few levels; encoding/json alone would allow 10000.
const MaxFrameDepth = 32

// overDepth reports whether the JSON text b nests deeper than limit, with
// one pass over the bytes and no allocation, so a frame of 64 KiB of "["
// costs nothing before it is refused.
func overDepth(b []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
