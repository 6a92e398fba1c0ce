package diag

import "strings"

// Closest returns the candidate nearest to word by edit distance (Levenshtein,
// case-insensitive), or "" when none is close enough to be a likely typo: the
// distance must be at most len(word)/3+1 and less than len(word). Ties go to
// the earlier candidate, so pass candidates in a stable order.
func Closest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := len(w)/3 + 1
	best, bestDist := "", limit+1
	for _, c := range candidates {
		d := distance(w, strings.ToLower(c))
		if d < bestDist && d < len(w) {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
