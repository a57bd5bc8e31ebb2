package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/source"
)

// Events socle sends.
const (
	// EventFindingsNew: a sync opened findings that have a fix.
	EventFindingsNew = "findings.new"
	// EventRemediationDone: a remediation was applied.
	EventRemediationDone = "remediation.done"
	// EventAwaitingApproval: a fix run's digest waits for approvers.
	EventAwaitingApproval = "remediation.awaiting_approval"
)

// Webhook is one receiver.
type Webhook struct {
	URL string
	// Events it receives (all when empty).
	Events []string
	// Secret signs the body (X-Socle-Signature: sha256=HEX); never logged.
	Secret string
}

// Notifier sends events to webhooks.
type Notifier struct {
	Hooks  []Webhook
	Client *http.Client
	// Attempts per delivery (default 4) and the first backoff (default
	// 1s), doubled after each failure.
	Attempts int
	Backoff  time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// FromConfig returns the notifier of socle.yaml's webhooks; each secret
// is read from the environment variable the webhook names.
func FromConfig(hooks []config.Webhook, log *slog.Logger) *Notifier {
	n := &Notifier{Logger: log}
	for _, w := range hooks {
		n.Hooks = append(n.Hooks, Webhook{URL: w.URL, Events: w.Events, Secret: os.Getenv(w.SecretEnv)})
	}
	return n
}

// Envelope is the JSON body of every delivery.
type Envelope struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
	Data  any       `json:"data"`
}

// Send delivers the event to every webhook that wants it and returns
// the first failure after all attempts.
func (n *Notifier) Send(ctx context.Context, event string, data any) error {
	if n == nil || len(n.Hooks) == 0 {
		return nil
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	body, err := json.Marshal(Envelope{Event: event, At: now().UTC(), Data: data})
	if err != nil {
		return err
	}
	var first error
	for _, h := range n.Hooks {
		if len(h.Events) > 0 && !slices.Contains(h.Events, event) {
			continue
		}
		if err := n.deliver(ctx, h, event, body); err != nil {
			n.log().Warn("webhook delivery failed", "webhook", redact(h.URL), "event", event, "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// Func adapts Send for callers that only report failures in the log.
func (n *Notifier) Func() func(ctx context.Context, event string, data any) {
	return func(ctx context.Context, event string, data any) { _ = n.Send(ctx, event, data) }
}

func (n *Notifier) log() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (n *Notifier) deliver(ctx context.Context, h Webhook, event string, body []byte) error {
	attempts, backoff := n.Attempts, n.Backoff
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	client := n.Client
	if client == nil {
		// A delivery has a deadline, and never follows a redirect: the
		// signed body goes to the URL configured, nowhere else.
		client = &http.Client{Timeout: 30 * time.Second, Transport: source.NewTransport(source.Timeouts{}),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "socle-webhook")
		req.Header.Set("X-Socle-Event", event)
		if h.Secret != "" {
			req.Header.Set("X-Socle-Signature", Sign(h.Secret, body, n.now()))
		}
		resp, err := client.Do(req)
		if err != nil {
			last = fmt.Errorf("attempt %d: %w", i+1, scrub(err, h.URL))
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			last = fmt.Errorf("attempt %d: %s", i+1, resp.Status)
		default:
			return fmt.Errorf("%s answered %s: not retried", redact(h.URL), resp.Status)
		}
	}
	return fmt.Errorf("%s: %d attempts: %w", redact(h.URL), attempts, last)
}

// Sign returns the X-Socle-Signature of a body sent at t:
// "t=UNIX,v1=HEX", HEX being HMAC-SHA256 of "UNIX.BODY" with the secret.
// The time is signed with the body, so that a receiver can refuse a
// replay of an old delivery.
func Sign(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrReplay is a delivery whose signature is right but whose time is
// outside the tolerance: a replay, or a clock far off.
var ErrReplay = errors.New("webhook delivery outside the accepted time window")

// Verify checks a delivery's signature for receivers: the HMAC over the
// signed time and the body, and the time within tolerance of now.
func Verify(secret string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(signature, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("webhook signature: want t=UNIX,v1=HEX")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("webhook signature does not match")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return ErrReplay
	}
	return nil
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// redact keeps a webhook URL's host and path only: query strings and
// user info often carry tokens.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable webhook URL)"
	}
	return p.Scheme + "://" + p.Host + p.Path
}

// scrub replaces the full URL in a transport error with its redaction.
func scrub(err error, u string) error {
	var ue *url.Error
	if e, ok := err.(*url.Error); ok {
		ue = e
		return fmt.Errorf("%s %s: %v", ue.Op, redact(u), ue.Err)
	}
	return err
}
