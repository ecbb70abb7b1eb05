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

func topicsJSON(topics []string) (string, error) {
	if len(topics) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(topics)
	if err != nil {
		return "", fmt.Errorf("encode topics: %w", err)
	}
	return string(b), nil
}

// parseTopics returns nil for no topics so a round trip keeps nil.
func parseTopics(s string) ([]string, error) {
	var topics []string
	if err := json.Unmarshal([]byte(s), &topics); err != nil {
		return nil, fmt.Errorf("decode topics: %w", err)
	}
	if len(topics) == 0 {
		return nil, nil
	}
	return topics, nil
}
