// Package jsondepth measures how deep a JSON text nests before it is
// parsed, so that a body or frame of nothing but "[" is refused for the
// price of one pass over its bytes instead of a parser's recursion.
package jsondepth

// Exceeds returns the offset of the first '{' or '[' that nests deeper
// than limit, or -1 when none does. Brackets inside strings do not count.
// It allocates nothing and does not validate the text otherwise.
func Exceeds(b []byte, limit int) int {
	depth, inString, escaped := 0, false, false
	for i, c := range b {
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
				return i
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return -1
}
