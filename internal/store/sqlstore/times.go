package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"
)

// ms stores a time as unix milliseconds, the zero time as 0, so both
// dialects compare times as plain integers.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms; times come back in UTC.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// now is the store's clock for fields the caller left zero, truncated to
// what the database keeps.
func now() time.Time { return fromMS(time.Now().UnixMilli()) }

func topicsJSON(topics []string) (string, error) { return listJSON("topics", topics) }

// parseTopics returns nil for no topics so a round trip keeps nil.
func parseTopics(s string) ([]string, error) { return parseList("topics", s) }

// listJSON stores a list of strings as a JSON array, [] for none.
func listJSON(what string, list []string) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", what, err)
	}
	return string(b), nil
}

// parseList is the inverse of listJSON; an empty list comes back nil.
func parseList(what, s string) ([]string, error) {
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}
