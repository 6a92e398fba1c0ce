package diag

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"brokers", "tls", "sasl", "commit_interval", "guarantee"}
	tests := []struct {
		word, want string
	}{
		{"brokres", "brokers"},
		{"comit_interval", "commit_interval"},
		{"Guarantee", "guarantee"},
		{"tsl", "tls"},
		{"zzz", ""},
		{"x", ""},
		{"", ""},
		{"completely_unrelated", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, keys); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"abc", "abc", 0},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
