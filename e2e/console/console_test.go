// Package console tests the operator console in a real browser: it runs
// `veltrix dev` (the embedded broker, the bundled example rules and the
// event generator: what `make run` starts), loads each console page in
// headless Chromium (Debian's chromium package), checks what the page shows
// after the browser has parsed it, and saves a screenshot of it.
//
// Screenshots go to $VELTRIX_CONSOLE_SHOTS when set (make console-shots
// sets docs/console), else to a temporary directory named in the log.
package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/dlq"
	"github.com/veltrix/veltrix/internal/testlog"
)

var (
	veltrixBin string
	chromium   string
)

func TestMain(m *testing.M) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		fmt.Fprintln(os.Stderr, "e2e/console: headless Chromium is required (Debian/Ubuntu: apt-get install -y chromium; `make test` installs it when run as root)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "veltrix-console")
	if err != nil {
		panic(err)
	}
	veltrixBin = filepath.Join(dir, "veltrix")
	build := exec.Command("go", "build", "-o", veltrixBin, "../../cmd/veltrix")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/console: build veltrix:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// eventually polls f every 200ms until it returns "" or the deadline
// passes, and fails with f's last answer.
func eventually(t *testing.T, d time.Duration, what string, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, d, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpGet(u string) (int, string) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// browser runs headless Chromium once with args and the URL, returning
// its standard output (the DOM with --dump-dom).
func browser(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=3000"}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(errb.String(), 20))
	}
	return out.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func shotsDir(t *testing.T) string {
	if d := os.Getenv("VELTRIX_CONSOLE_SHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := filepath.Join(os.TempDir(), "veltrix-console-shots")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// page loads u in the browser, checks that the parsed DOM matches every
// pattern, and saves a screenshot as name.png.
func page(t *testing.T, dir, name, u string, wants ...string) string {
	t.Helper()
	dom := browser(t, "--dump-dom", "--window-size=1400,1000", u)
	for _, w := range wants {
		if !regexp.MustCompile(w).MatchString(dom) {
			t.Errorf("%s (%s): the page does not show %s\n%s", name, u, w, tail(dom, 30))
		}
	}
	shot := filepath.Join(dir, name+".png")
	// A fragment scrolls headless Chromium's screenshot past the page:
	// shoot the top of the page.
	browser(t, "--screenshot="+shot, "--window-size=1400,1300", strings.SplitN(u, "#", 2)[0])
	if st, err := os.Stat(shot); err != nil || st.Size() < 5000 {
		t.Errorf("%s: screenshot %s: %v (size %v)", name, shot, err, st)
	}
	return dom
}

var (
	consoleRE = regexp.MustCompile(`console: http://(\S+)/`)
	brokerRE  = regexp.MustCompile(`embedded broker on (\S+),`)
	csrfRE    = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	refRE     = regexp.MustCompile(`name="r" value="([^"]+)"`)
)

func TestConsoleInBrowser(t *testing.T) {
	dir := shotsDir(t)
	t.Logf("screenshots in %s", dir)
	work := t.TempDir()
	cmd := exec.Command(veltrixBin, "dev", "--rate", "150")
	cmd.Dir = work
	var out testlog.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("veltrix dev output:\n%s", tail(out.String(), 40))
		}
	})
	var addr, brokers string
	eventually(t, 60*time.Second, "veltrix dev prints its console address", func() string {
		if m := consoleRE.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			brokers = brokerRE.FindStringSubmatch(out.String())[1]
			return ""
		}
		return "no console line yet"
	})
	base := "http://" + addr
	// Wait for live data: records through the rules, keys in a store, and
	// records in the DLQ (the generator sends some malformed events).
	eventually(t, 90*time.Second, "rules process records and a store has keys", func() string {
		_, m := httpGet(base + "/metrics")
		if !regexp.MustCompile(`veltrix_rule_records_total\{outcome="matched",rule="[^"]+"\} [1-9]`).MatchString(m) {
			return "no matched records yet"
		}
		if !regexp.MustCompile(`veltrix_rule_records_total\{outcome="dlq",rule="[^"]+"\} [1-9]`).MatchString(m) {
			return "no DLQ records yet"
		}
		// Store sizes are counted every 15 s.
		if !regexp.MustCompile(`veltrix_state_store_keys\{store="[^"]+"\} [1-9]`).MatchString(m) {
			return "no store keys counted yet"
		}
		return ""
	})

	page(t, dir, "topology", base+"/",
		`<svg id="topology"`, `class="node rule"`, `class="node dlq"`, `class="node store"`, `>ecommerce\.dlq</text>`,
		`in [0-9.]*[1-9][0-9.]*/s`, // a live, non-zero rate
		`<td class="name">[^<]+</td>`)
	page(t, dir, "partitions", base+"/partitions?refresh=0",
		`<b>this instance</b>`, `<td class="n">5</td>`, `orders: <b>\d+</b>`, `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

	var dlqDOM string
	eventually(t, 60*time.Second, "the DLQ page lists records", func() string {
		_, dlqDOM = httpGet(base + "/dlq")
		if !strings.Contains(dlqDOM, `class="code">VX`) {
			return "no DLQ records listed"
		}
		return ""
	})
	dom := page(t, dir, "dlq", base+"/dlq",
		`<a href="/errors#vx\d{4}" class="code">VX\d{4}</a>`, `name="r" value="ecommerce\.dlq/\d+/\d+"`, `newest committed records of ecommerce\.dlq`)
	code := regexp.MustCompile(`class="code">(VX\d{4})</a>`).FindStringSubmatch(dom)[1]
	page(t, dir, "dlq-filtered", base+"/dlq?code="+code,
		`<option value="`+code+`" selected="">`, `class="code">`+code+`</a>`)
	page(t, dir, "errors", base+"/errors#"+strings.ToLower(code), `<section id="`+strings.ToLower(code)+`" class="errdoc">`)

	// Replay the first record listed and find it, with its audit header,
	// on its source topic.
	ref := refRE.FindStringSubmatch(dlqDOM)[1]
	form := url.Values{"r": {ref}, "csrf": {csrfRE.FindStringSubmatch(dlqDOM)[1]}}
	req, _ := http.NewRequest(http.MethodPost, base+"/dlq/replay", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	replayPage, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	to := regexp.MustCompile(`<td>` + regexp.QuoteMeta(ref) + `</td><td>([^<]+)/(\d+)/(\d+)</td><td><span class="ok">replayed`).FindStringSubmatch(string(replayPage))
	if to == nil {
		t.Fatalf("replay of %s: %s", ref, tail(string(replayPage), 20))
	}
	checkReplayed(t, brokers, ref, to[1], to[2], to[3])

	page(t, dir, "stores", base+"/stores?store=inventory-levels&prefix=&limit=20",
		`<td><code>[^<]+</code></td>`, `"count": \d+`, `"sum": `)
	page(t, dir, "config", base+"/config",
		`<code>kafka\.brokers</code></td><td><code>\[127\.0\.0\.1:\d+\]</code></td><td>veltrix dev</td>`,
		`<code>processing\.guarantee</code></td><td><code>exactly_once</code></td><td>[^<]*veltrix\.yaml:\d+:\d+</td>`,
		`<code>kafka\.sasl\.password</code></td><td><i>\(not set\)</i>`,
		`<td>rule</td><td>[^<]+</td><td>[^<]*rules/[a-z]+\.yaml:\d+:\d+</td>`)

	// The validate box: a form POST, which the browser cannot be told to
	// send from the command line; the answer is checked here and shown
	// in the browser from a saved copy (pointed at the console's assets).
	_, cfgPage := httpGet(base + "/config")
	form = url.Values{"csrf": {csrfRE.FindStringSubmatch(cfgPage)[1]},
		"yaml": {"name: big-spenders\nfrom: orders\nsteps:\n  - filter: event.total + \"x\"\n  - to: orders.big-spenders\n"}}
	resp, err = http.PostForm(base+"/config/validate", form)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`1 problem(s)`, `pasted:4:`, `<a href="/errors#vx3002">VX3002</a>`} {
		if !strings.Contains(string(answer), w) {
			t.Errorf("validate: the answer does not show %q:\n%s", w, tail(string(answer), 20))
		}
	}
	saved := filepath.Join(t.TempDir(), "validate.html")
	html := strings.Replace(string(answer), "<head>", `<head><base href="`+base+`/">`, 1)
	html = regexp.MustCompile(`(?s)<script.*?</script>`).ReplaceAllString(html, "")
	if err := os.WriteFile(saved, []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	page(t, dir, "validate", "file://"+saved, `VX3002`, `pasted:4:\d+`)
}

// checkReplayed reads the replayed record back from its source topic,
// read_committed, and checks its audit header.
func checkReplayed(t *testing.T, brokers, ref, topic, partition, offset string) {
	t.Helper()
	p, _ := strconv.ParseInt(partition, 10, 32)
	o, _ := strconv.ParseInt(offset, 10, 64)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {int32(p): kgo.NewOffset().At(o)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var found *kgo.Record
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Offset == o {
				found = r
			}
		})
		if found == nil {
			continue
		}
		for _, h := range found.Headers {
			if h.Key == dlq.HeaderReplay {
				want := `"dlq_topic":"` + strings.Split(ref, "/")[0] + `"`
				if !strings.Contains(string(h.Value), want) || !strings.Contains(string(h.Value), `"by":"console `) {
					t.Errorf("audit header %s, want %s and by console", h.Value, want)
				}
				return
			}
		}
		t.Fatalf("replayed record %s/%s/%s has no %s header: %v", topic, partition, offset, dlq.HeaderReplay, found.Headers)
	}
	t.Fatalf("replayed record %s/%s/%s not read back", topic, partition, offset)
}
