package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Status is how a check ended.
type Status string

// The statuses a check ends with.
const (
	// Passed: the check ran and found nothing wrong.
	Passed Status = "PASS"
	// Failed: the check found the adapter breaking the protocol.
	Failed Status = "FAIL"
	// Skipped: the check did not run, for the reason its result gives
	// (a capability not declared, a fixture missing, an earlier check
	// failed).
	Skipped Status = "SKIP"
)

// Result is one check's outcome.
type Result struct {
	// ID is the check's stable id, e.g. "transactions/count-honoured".
	ID string
	// Status is how it ended.
	Status Status
	// Reason says why a check was skipped; empty otherwise.
	Reason string
	// Failures are what the check found wrong, one line each.
	Failures []string
	// Notes are what the check saw or left unchecked, one line each.
	Notes []string
	// Duration is how long it ran.
	Duration time.Duration

	mu      sync.Mutex
	skipped bool
}

func (r *Result) addFailure(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Failures = append(r.Failures, msg)
}

func (r *Result) addNote(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, msg)
}

func (r *Result) skip(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped, r.Reason = true, reason
}

// finish sets Status once the check has ended: a failure wins over a skip.
func (r *Result) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case len(r.Failures) > 0:
		r.Status = Failed
	case r.skipped:
		r.Status = Skipped
	default:
		r.Status = Passed
	}
}

// line is the result in one line, for a progress log.
func (r *Result) line() string {
	switch r.Status {
	case Failed:
		return fmt.Sprintf("FAIL %s: %s", r.ID, strings.Join(r.Failures, "; "))
	case Skipped:
		return fmt.Sprintf("SKIP %s: %s", r.ID, r.Reason)
	}
	return "PASS " + r.ID
}

// Adapter is what the adapter said about itself.
type Adapter struct {
	BankID, DisplayName, AdapterVersion, ProtocolVersion string
	Capabilities                                         []string
}

// Report is the outcome of a conformance run: one result per check of the
// registry, in the registry's order, every one of them present.
type Report struct {
	// Adapter is what GetAdapterInfo said; empty when it failed.
	Adapter Adapter
	// Started is when the run began.
	Started time.Time
	// Duration is how long it took.
	Duration time.Duration
	// Results holds every check of [Checks], in that order.
	Results []*Result

	progress io.Writer
	byID     map[string]*Result
}

func newReport(progress io.Writer) *Report {
	r := &Report{Started: time.Now(), progress: progress, byID: map[string]*Result{}}
	for _, ci := range Checks() {
		res := &Result{ID: ci.ID}
		r.Results = append(r.Results, res)
		r.byID[ci.ID] = res
	}
	return r
}

func (r *Report) result(id string) *Result { return r.byID[id] }

// close marks every check that never ran as skipped, saying why.
func (r *Report) close(why string) {
	for _, res := range r.Results {
		if res.Status == "" {
			res.skip("not run: " + why)
			res.finish()
			if r.progress != nil {
				fmt.Fprintln(r.progress, res.line())
			}
		}
	}
	r.Duration = time.Since(r.Started)
}

// Count returns how many checks ended with status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Passed says whether no check failed: every check passed or was skipped
// with its reason.
func (r *Report) Passed() bool { return r.Count(Failed) == 0 }

// Summary is the run in a few lines: the counts, then every failed and
// skipped check with why.
func (r *Report) Summary() string {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "bankbridge conformance %s: %d passed, %d failed, %d skipped of %d checks (%s)\n",
		verdict, r.Count(Passed), r.Count(Failed), r.Count(Skipped), len(r.Results), r.Duration.Round(time.Millisecond))
	for _, res := range r.Results {
		if res.Status != Passed {
			fmt.Fprintf(&b, "  %s\n", res.line())
		}
	}
	return b.String()
}

// WriteMarkdown writes the report for an integrator to attach to their
// submission: the adapter, the verdict, and a table of every check with
// its status and why, then each failure in full.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	verdict := "passed"
	if !r.Passed() {
		verdict = "FAILED"
	}
	b.WriteString("# bankbridge adapter conformance report\n\n")
	if r.Adapter.BankID != "" {
		fmt.Fprintf(&b, "- Bank: %s (`%s`), adapter version %s, protocol %s\n", mdEscape(r.Adapter.DisplayName),
			mdEscape(r.Adapter.BankID), mdEscape(r.Adapter.AdapterVersion), mdEscape(r.Adapter.ProtocolVersion))
		fmt.Fprintf(&b, "- Capabilities declared: %s\n", strings.Join(r.Adapter.Capabilities, ", "))
	}
	fmt.Fprintf(&b, "- Run: %s, %s\n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "- Verdict: **%s**: %d passed, %d failed, %d skipped of %d checks\n\n",
		verdict, r.Count(Passed), r.Count(Failed), r.Count(Skipped), len(r.Results))
	b.WriteString("A skipped check was not run, for the reason given: it proves nothing about the adapter. " +
		"See CHECKS.md in the kit for what each check asks of the bank's test data.\n\n")
	b.WriteString("| check | status | why |\n| --- | --- | --- |\n")
	for _, res := range r.Results {
		why := ""
		switch res.Status {
		case Failed:
			why = fmt.Sprintf("%d failure(s), below", len(res.Failures))
		case Skipped:
			why = res.Reason
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", res.ID, res.Status, mdEscape(why))
	}
	if !r.Passed() {
		b.WriteString("\n## Failures\n")
		for _, res := range r.Results {
			if res.Status != Failed {
				continue
			}
			fmt.Fprintf(&b, "\n### `%s`\n\n", res.ID)
			for _, f := range res.Failures {
				fmt.Fprintf(&b, "- %s\n", mdEscape(f))
			}
		}
	}
	var noted []*Result
	for _, res := range r.Results {
		if len(res.Notes) > 0 {
			noted = append(noted, res)
		}
	}
	if len(noted) > 0 {
		b.WriteString("\n## Notes\n")
		for _, res := range noted {
			fmt.Fprintf(&b, "\n### `%s`\n\n", res.ID)
			for _, n := range res.Notes {
				fmt.Fprintf(&b, "- %s\n", mdEscape(n))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps an adapter's text from breaking the report's tables:
// one line, no pipes, no HTML.
func mdEscape(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// JUnit XML, as CI systems read it (the Ant/Surefire schema's common
// subset): one testsuite, one testcase per check, classname its group.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: a test case per check, with
// a failure or a skipped element saying why.
func (r *Report) WriteJUnit(w io.Writer) error {
	name := "bankbridge-conformance"
	if r.Adapter.BankID != "" {
		name += " " + r.Adapter.BankID
	}
	suite := junitSuite{
		Name: name, Tests: len(r.Results), Failures: r.Count(Failed), Skipped: r.Count(Skipped),
		Time: seconds(r.Duration), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	for _, res := range r.Results {
		group, _, _ := strings.Cut(res.ID, "/")
		tc := junitCase{Name: res.ID, Classname: "conformance." + group, Time: seconds(res.Duration)}
		switch res.Status {
		case Failed:
			tc.Failure = &junitMessage{Message: res.Failures[0], Text: strings.Join(res.Failures, "\n")}
		case Skipped:
			tc.Skipped = &junitMessage{Message: res.Reason}
		}
		if len(res.Notes) > 0 {
			tc.SystemOut = strings.Join(res.Notes, "\n")
		}
		suite.Cases = append(suite.Cases, tc)
	}
	doc := junitSuites{Name: "bankbridge-conformance", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped,
		Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// FailedIDs returns the ids of the checks that failed.
func (r *Report) FailedIDs() []string {
	var ids []string
	for _, res := range r.Results {
		if res.Status == Failed {
			ids = append(ids, res.ID)
		}
	}
	return slices.Clip(ids)
}
