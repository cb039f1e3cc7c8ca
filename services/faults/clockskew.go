package faults

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bankbridge/bankbridge/services/platform/names"
	"github.com/bankbridge/bankbridge/services/platform/storage"
)

// skew is the clock skew the clock-skew row tries, each way.
const skew = 5 * time.Minute

// skewLeft is how long the row's consent has left when the reads start;
// skewAfter how long they go on past its expiry: longer than balance's
// 30 s consent cache, so a decision kept past the expiry would show.
const (
	skewLeft  = 12 * time.Second
	skewAfter = 35 * time.Second
)

// clockSkew restarts balance, then consent, with their clock 5 min off
// (--dev-clock-offset) and reads, every 250 ms, the balance of a user
// whose consent expires a few seconds later (set in consent's database:
// CreateLink grants a day at least). It checks, by consent's clock, that
// nothing is served once the consent has expired and that nothing is
// refused before. It also notes what a service behind the token issuer
// does with a fresh token. Every process is back on the wall clock after.
func clockSkew(ctx context.Context, m *Matrix) Outcome {
	o := Outcome{Pass: true}
	var all []Call
	restart := func(name string, extra ...string) error {
		if err := m.H.Stack.StopProcess(name); err != nil {
			return err
		}
		return m.H.Stack.Restart(ctx, name, extra...)
	}
	defer func() {
		// Back on the wall clock for the rows after this one.
		for _, name := range []string{"balance", "consent"} {
			if err := restart(name); err != nil {
				o.fail("restarting %s on the wall clock: %v", name, err)
			}
		}
	}()

	// A service 5 min behind the token issuer: a fresh token's nbf lies
	// beyond its 30 s leeway.
	if err := restart("balance", "--dev-clock-offset=-5m"); err != nil {
		o.fail("restart balance -5m: %v", err)
		return o
	}
	if c, err := m.freshRead(ctx); err != nil {
		o.fail("token probe: %v", err)
	} else {
		o.note("balance 5 min behind the token issuer: a fresh token is refused %s (nbf beyond the 30 s leeway), nothing served", c.Key())
		if c.Code != codes.Unauthenticated {
			o.fail("balance 5 min behind answered a fresh token %s, want UNAUTHENTICATED", c.Key())
		}
	}

	phases := []struct {
		name    string
		process string // the one restarted 5 min ahead
		users   []*User
	}{
		{name: "balance 5 min ahead of consent", process: "balance"},
		{name: "balance 5 min behind consent", process: "consent"},
	}
	// Linked on the wall clock: a consent 5 min ahead would find the
	// sandbox's SCA challenge expired.
	for i := range phases {
		users, err := m.H.LinkUsers(ctx, fmt.Sprintf("skew%d%s", i, randomHex(2)), 2, "alice")
		if err != nil {
			o.fail("link: %v", err)
			return o
		}
		phases[i].users = users
	}
	for i, p := range phases {
		if i == 1 {
			if err := restart("balance"); err != nil {
				o.fail("restart balance: %v", err)
				return o
			}
		}
		if err := restart(p.process, "--dev-clock-offset=5m"); err != nil {
			o.fail("restart %s +5m: %v", p.process, err)
			return o
		}
		// consent's clock minus the wall clock.
		consentOffset := time.Duration(0)
		if p.process == "consent" {
			consentOffset = skew
		}
		calls, err := m.readsAroundExpiry(ctx, p.users[0], p.users[1], consentOffset, p.name, &o)
		if err != nil {
			o.fail("%s: %v", p.name, err)
			return o
		}
		all = append(all, calls...)
	}
	o.Summary = Summarize(all, time.Time{}, time.Time{})
	return o
}

// freshRead reads the balance of a newly linked user, with a token minted
// just now, retrying while balance's connection comes back.
func (m *Matrix) freshRead(ctx context.Context) (Call, error) {
	u := &User{ID: "skewtok" + randomHex(3)}
	var err error
	if u.Token, err = m.H.DevToken(ctx, u.ID); err != nil {
		return Call{}, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := m.H.read(ctx, u, 5*time.Second)
		if c.Code != codes.Unavailable || time.Now().After(deadline) {
			return c, nil
		}
		if err := wait(ctx, 200*time.Millisecond); err != nil {
			return c, err
		}
	}
}

// readsAroundExpiry waits until warm is served, moves u's link's expiry
// to skewLeft from now by consent's clock (consentOffset from the wall
// clock), and reads u's balance every 250 ms until skewAfter past it. A
// read that started at or after the expiry must be refused
// CONSENT_EXPIRED; one that ended before it must be served.
func (m *Matrix) readsAroundExpiry(ctx context.Context, warm, u *User, consentOffset time.Duration, phase string, o *Outcome) ([]Call, error) {
	// balance's connection and its consent change stream come back first.
	deadline := time.Now().Add(15 * time.Second)
	for c := m.H.read(ctx, warm, 5*time.Second); c.Code != codes.OK; c = m.H.read(ctx, warm, 5*time.Second) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("balance not serving after the restart: %s", c.Key())
		}
		if err := wait(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	expire := time.Now().Add(skewLeft) // wall clock
	if err := m.setLinkExpiry(ctx, u.Link, expire.Add(consentOffset)); err != nil {
		return nil, err
	}
	var calls []Call
	var served, early, late, wrong int
	for time.Now().Before(expire.Add(skewAfter)) {
		c := m.H.read(ctx, u, 5*time.Second)
		calls = append(calls, c)
		end := c.Start.Add(c.Latency)
		switch {
		case !c.Start.Before(expire) && c.Code == codes.OK:
			late++
		case !c.Start.Before(expire) && c.Reason != "CONSENT_EXPIRED":
			wrong++
		case end.Before(expire) && c.Code != codes.OK:
			early++
		case c.Code == codes.OK:
			served++
		}
		if err := wait(ctx, 250*time.Millisecond); err != nil {
			return calls, err
		}
	}
	o.note("%s: %d reads served before the expiry, %d refused before it, %d served after it, %d refused after it other than CONSENT_EXPIRED",
		phase, served, early, late, wrong)
	if late > 0 {
		o.fail("%s: %d reads served after the consent expired", phase, late)
	}
	if early > 0 {
		o.fail("%s: %d reads refused before the consent expired", phase, early)
	}
	if wrong > 0 {
		o.fail("%s: %d reads after the expiry refused other than CONSENT_EXPIRED", phase, wrong)
	}
	return calls, nil
}

// setLinkExpiry sets link's expire_time in consent's own database: the
// API grants a day at least, and the row needs a consent that ends within
// seconds.
func (m *Matrix) setLinkExpiry(ctx context.Context, link string, at time.Time) error {
	l, err := names.ParseLink(link)
	if err != nil {
		return err
	}
	dbURL := storage.SQLiteURL(filepath.Join(m.H.Stack.DataDir(), "consent"), "consent")
	if m.H.cfg.PostgresURL != "" {
		u, err := url.Parse(m.H.cfg.PostgresURL)
		if err != nil {
			return err
		}
		for _, db := range m.H.dbs {
			if strings.HasSuffix(db, "_consent") {
				u.Path = "/" + db
			}
		}
		dbURL = u.String()
	}
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, `UPDATE links SET expire_time = $1 WHERE user_id = $2 AND link_id = $3`, storage.Micros(at), l.User, l.ID)
	if err != nil {
		return fmt.Errorf("set the link's expiry: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("set the link's expiry: %d rows", n)
	}
	return nil
}
