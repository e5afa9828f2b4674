package console_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// screenshotDir is where the browser test writes a screenshot of each page
// when GATEHOUSE_SCREENSHOTS=1 (docs/console.md shows them).
var screenshotDir = filepath.Join("..", "..", "..", "docs", "console")

// chromium returns the path of a Chromium or Chrome binary, "" when there
// is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab drives one browser tab against a test server.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot bool
}

// newTab starts a headless Chromium for the test, or skips the test when
// none is installed (.ci/run installs it, so CI runs these tests).
func newTab(t *testing.T, base string) *tab {
	t.Helper()
	path := chromium()
	if path == "" {
		t.Skip("no chromium installed; .ci/run installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	// The first run starts the browser, which lives as long as its context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return &tab{t: t, ctx: ctx, base: base, shot: os.Getenv("GATEHOUSE_SCREENSHOTS") == "1"}
}

// do runs steps, failing the test on an error.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		b.t.Fatalf("%s: %v\nthe browser shows %s:\n%s", what, err, loc, body)
	}
}

// text returns the visible text of the first element sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// value returns the value of the input sel matches.
func (b *tab) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

// open navigates to path and waits for the page's heading; confirmation
// dialogs of the page are accepted.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS("h1")),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`))
}

// submit clicks a form's button and waits for what the next page shows:
// next (a list of CSS selectors) in a new document, not the one clicked.
func (b *tab) submit(button, next string) {
	b.t.Helper()
	sels := strings.Split(next, ", ")
	for i, s := range sels {
		sels[i] = "html:not([data-stale]) " + s
	}
	b.do("submit "+button, chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stale = "1"`),
		chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS(strings.Join(sels, ", "))))
}

// flash submits a form and checks the page it leads to reports success.
func (b *tab) flash(button, want string) {
	b.t.Helper()
	b.submit(button, "main .flash, main .error")
	if got := b.text("main"); !strings.Contains(got, want) {
		b.t.Fatalf("after %s: want %q in %s", button, want, got)
	}
}

// screenshot saves the page as docs/console/name.png when screenshots
// are asked for.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	if !b.shot {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// signIn fills the sign-in form.
func (b *tab) signIn(name, pw string) {
	b.t.Helper()
	b.open("/console/login")
	b.do("sign in as "+name, chromedp.SendKeys(chromedp.CSS("#name"), name), chromedp.SendKeys(chromedp.CSS("#password"), pw))
	if name == "root" {
		b.screenshot("login")
	}
	b.submit(`form[action="/console/login"] button`, ".signout")
}

// TestBrowser drives the console in Chromium through a day's tasks: root
// signs in, creates a role and an account holding it, creates an app and
// copies its secret, opens a channel; a ccmessaging session opened
// through the API with that secret is ended from the console; a key is
// rotated; the audit page shows each action, and its live tail what
// happens meanwhile. The new account then signs in and sees only what its
// role grants.
func TestBrowser(t *testing.T) {
	ts := servertest.Start(t, nil)
	b := newTab(t, ts.Base)

	// Sign in; the overview draws its charts from the server's metrics.
	b.open("/console/")
	if loc, err := chromedp.Run(b.ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "/console/login") {
		t.Fatalf("not signed in, the console shows %s (%v)", loc, err)
	}
	b.signIn("root", rootPW)
	b.do("charts", chromedp.WaitVisible(chromedp.CSS("#charts figure.chart svg polyline")))

	// A role that may read sessions and the audit, and end sessions.
	b.open("/console/roles")
	b.do("role form", chromedp.Click(chromedp.CSS("main details > summary")),
		chromedp.SendKeys(chromedp.CSS("#role-name"), "operator"),
		chromedp.Click(chromedp.CSS(`input[name="verbs.session"][value="get"]`)),
		chromedp.Click(chromedp.CSS(`input[name="verbs.session"][value="delete"]`)),
		chromedp.Click(chromedp.CSS(`input[name="verbs.audit"][value="get"]`)))
	b.flash(`form[action="/console/roles"] button[type="submit"]`, "Created.")
	b.screenshot("role")
	var role struct {
		Perms []struct {
			Resources []struct{ Type string }
			Verbs     []string
		}
	}
	ts.Call("GET", "/v4/roles/operator", ts.Root(), nil).JSON(t, &role)
	if len(role.Perms) != 2 {
		t.Fatalf("the role's permissions: %+v", role.Perms)
	}

	// An account holding it.
	b.open("/console/accounts")
	b.do("account form", chromedp.Click(chromedp.CSS("main details > summary")),
		chromedp.SendKeys(chromedp.CSS("#new-name"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#new-password"), "Olivia-Passw0rd!"),
		chromedp.Click(chromedp.CSS(`input[name="roles"][value="operator"]`)))
	b.flash(`form[method="post"][action="/console/accounts"] button`, "Created.")
	if got := b.text("main table"); !strings.Contains(got, "olivia") || !strings.Contains(got, "operator") {
		t.Fatalf("accounts table: %s", got)
	}
	b.screenshot("accounts")

	// An app: its secret is shown once, and the copy button copies it.
	b.open("/console/apps")
	b.do("app form", chromedp.Click(chromedp.CSS("main details > summary")),
		chromedp.SendKeys(chromedp.CSS("#app-name"), "web-chat"))
	b.submit(`form[action="/console/apps"] button[type="submit"]`, "#secret")
	appKey, secret := b.text("#app-key"), b.value("#secret")
	if appKey == "" || secret == "" {
		t.Fatalf("app key %q, secret shown: %v", appKey, secret != "")
	}
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(b.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: ts.Base}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	b.do("copy", chromedp.Click(chromedp.CSS("#copy-secret")))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.getElementById("copy-secret").textContent === "Copied"`)); err != nil {
		t.Fatalf("the copy button: %v", err)
	}
	copied, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil || copied != secret {
		t.Fatalf("the clipboard does not hold the secret the page shows (%v)", err)
	}
	b.screenshot("app-secret")
	b.open("/console/apps")
	if strings.Contains(b.text("main"), secret) {
		t.Fatal("the apps page shows the secret again")
	}
	b.screenshot("apps")

	// A channel open to the app.
	b.open("/console/channels")
	b.do("channel form", chromedp.Click(chromedp.CSS("main > details > summary")),
		chromedp.SendKeys(chromedp.CSS("#ch-id"), "1001"),
		chromedp.SendKeys(chromedp.CSS("#ch-name"), "Web chat"),
		chromedp.SendKeys(chromedp.CSS("#ch-keys"), appKey))
	b.flash(`form[action="/console/channels"] button[type="submit"]`, "Created.")
	b.screenshot("channels")

	// A session opened through the API with the copied secret...
	r := ts.Call("POST", "/apigovernance/api/oauth/tokenByAkSk", "", map[string]string{"app_key": appKey, "app_secret": copied})
	var access struct{ AccessToken string }
	r.JSON(t, &access)
	r = ts.Call("POST", "/apiaccess/ccmessaging/applyToken", "", map[string]string{"userId": "u-1001", "userName": "Ada",
		"channelId": "1001", "locale": "en_US"}, "x-app-key", appKey, "Authorization", "Bearer "+access.AccessToken)
	if r.Status != http.StatusOK {
		t.Fatalf("applyToken: %d %s", r.Status, r.Body)
	}
	// ...is found by user and ended from the console.
	b.open("/console/sessions?user=u-1001")
	end := `button[aria-label="End the session of u-1001 on 1001"]`
	b.do("session row", chromedp.WaitVisible(chromedp.CSS(end)))
	b.screenshot("sessions")
	b.flash(end, "Session ended.")
	var live struct{ Total int }
	ts.Call("GET", "/v4/ccmessaging-sessions", ts.Root(), nil).JSON(t, &live)
	if live.Total != 0 {
		t.Fatalf("%d sessions live after ending the only one", live.Total)
	}

	// A key rotation.
	b.open("/console/keys")
	b.flash(`form[action="/console/keys/rotate"] button`, "Key rotated.")
	if got := b.text("main table"); !strings.Contains(got, "pending") || !strings.Contains(got, "active") {
		t.Fatalf("key ring after rotation: %s", got)
	}
	b.screenshot("keys")

	// The audit page shows each action; its filter narrows it.
	b.open("/console/audit")
	log := b.text("#audit")
	for _, want := range []string{"role.create", "account.create", "app.create", "channel.create", "session.start", "session.end", "key.rotate"} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit page lacks %s: %s", want, log)
		}
	}
	b.screenshot("audit")
	b.do("filter", chromedp.SendKeys(chromedp.CSS("#a-action"), "key."))
	b.submit(`form[action="/console/audit"] button`, "#audit")
	if log := b.text("#audit tbody"); !strings.Contains(log, "key.rotate") || strings.Contains(log, "role.create") {
		t.Fatalf("audit filtered by action key.: %s", log)
	}

	// The live tail adds what happens meanwhile.
	b.open("/console/audit")
	b.do("tail", chromedp.Click(chromedp.CSS("#tail")))
	if r := ts.Call("POST", "/v4/roles", ts.Root(), map[string]any{"name": "tailed", "perms": []any{}}); r.Status != http.StatusOK {
		t.Fatalf("create role: %d %s", r.Status, r.Body)
	}
	b.do("tailed", chromedp.WaitVisible(chromedp.CSS("#audit tbody tr.new")))
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.querySelector("#audit tbody").textContent.includes("tailed")`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the live tail shows no role.create of tailed: %v", err)
	}

	b.open("/console/")
	b.do("charts", chromedp.WaitVisible(chromedp.CSS("#charts figure.chart svg polyline")))
	if b.shot { // a picture with a few samples in its charts
		if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.querySelectorAll('#charts polyline[points*=" "]').length > 0 &&
			[...document.querySelectorAll('#charts polyline')].every(p => p.getAttribute("points").split(" ").length >= 3)`,
			chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("charts with three samples: %v", err)
		}
	}
	b.screenshot("overview")
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	b.open("/console/accounts")
	b.screenshot("phone-accounts")
	b.do("laptop", chromedp.EmulateViewport(1280, 900))

	// Sign out; the new account sees only what its role grants.
	b.open("/console/")
	b.submit(`form.signout button`, "#password")
	b.signIn("olivia", "Olivia-Passw0rd!")
	if nav := b.text(`nav[aria-label="Sections"]`); !strings.Contains(nav, "Sessions") || !strings.Contains(nav, "Audit") ||
		strings.Contains(nav, "Accounts") || strings.Contains(nav, "Keys") || strings.Contains(nav, "Apps") {
		t.Fatalf("olivia's navigation: %s", nav)
	}
	b.screenshot("restricted")
	b.open("/console/keys")
	if got := b.text("main .error"); !strings.Contains(got, "permission") {
		t.Fatalf("olivia opens the keys page: %s", got)
	}
	b.open("/console/audit")
	b.do("audit for olivia", chromedp.WaitVisible(chromedp.CSS("#audit")))
}
