package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veltrix/veltrix/internal/httpapi"
)

// liveSource is a Source with liveness.
type liveSource struct {
	source
	live   bool
	reason string
}

func (s *liveSource) Live() (bool, string) { return s.live, s.reason }

// /livez answers 200 while the source is live (or cannot tell), 503 with
// the reason when its loop is stuck; it needs no token and is independent
// of readiness.
func TestLivez(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  httpapi.Source
		code int
		want string
	}{
		{"without liveness", &source{}, 200, "live"},
		{"live, not ready", &liveSource{live: true}, 200, "live"},
		{"stuck", &liveSource{source: source{ready: true}, reason: "no progress for 2m0s"}, 503, "not live: no progress for 2m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(httpapi.Handler(prometheus.NewRegistry(), testTopology(t), tc.src, httpapi.WithAuthToken("secret")))
			defer srv.Close()
			code, body := get(t, srv, "/livez")
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("GET /livez = %d %q, want %d containing %q", code, body, tc.code, tc.want)
			}
		})
	}
}
