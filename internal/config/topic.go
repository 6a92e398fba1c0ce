package config

import (
	"errors"
	"fmt"
)

// MaxTopicLength is the longest topic name Kafka accepts.
const MaxTopicLength = 249

// ValidTopicName reports why Kafka would reject name as a topic name, or nil:
// it must be non-empty, at most 249 characters, not "." or "..", and use only
// ASCII letters, digits, '.', '_' and '-'.
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("it is empty")
	case name == "." || name == "..":
		return fmt.Errorf("%q is reserved", name)
	case len(name) > MaxTopicLength:
		return fmt.Errorf("it is %d characters long, over the limit of %d", len(name), MaxTopicLength)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("character %q is not allowed (use letters, digits, '.', '_' and '-')", c)
		}
	}
	return nil
}
