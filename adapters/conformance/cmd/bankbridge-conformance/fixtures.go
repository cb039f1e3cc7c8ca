package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bankbridge/bankbridge/adapters/conformance"
	commonv1 "github.com/bankbridge/bankbridge/gen/bankbridge/common/v1"
)

// fixtureFile is the fixtures YAML, as fixtures.example.yaml documents it.
type fixtureFile struct {
	Version             int          `yaml:"version"`
	Customer            customer     `yaml:"customer"`
	UnknownLoginHint    string       `yaml:"unknown_login_hint"`
	Scopes              []string     `yaml:"scopes"`
	SecondCustomer      *otherCust   `yaml:"second_customer"`
	UnavailableCustomer *otherCust   `yaml:"unavailable_customer"`
	TriggerEvent        *httpTrigger `yaml:"trigger_event"`
	TriggerFraudAlert   *httpTrigger `yaml:"trigger_fraud_alert"`
	PromptEvents        bool         `yaml:"prompt_events"`
	CallTimeout         string       `yaml:"call_timeout"`
}

type customer struct {
	LoginHint     string `yaml:"login_hint"`
	GoodCode      string `yaml:"good_code"`
	BadCode       string `yaml:"bad_code"`
	BankConsentID string `yaml:"bank_consent_id"`
}

type otherCust struct {
	LoginHint     string `yaml:"login_hint"`
	BankConsentID string `yaml:"bank_consent_id"`
}

// httpTrigger is an HTTP request that makes the bank do something.
type httpTrigger struct {
	Method string            `yaml:"method"`
	URL    string            `yaml:"url"`
	CAFile string            `yaml:"ca_file"`
	Header map[string]string `yaml:"header"`
}

// triggerTimeout bounds one trigger request.
const triggerTimeout = 10 * time.Second

// loadFixtures reads and checks the fixtures file at path.
func loadFixtures(path string) (conformance.Fixtures, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return conformance.Fixtures{}, err
	}
	return parseFixtures(data)
}

// parseFixtures parses the fixtures YAML: unknown fields are an error, so
// that a typo cannot quietly skip a check.
func parseFixtures(data []byte) (conformance.Fixtures, error) {
	var f fixtureFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return conformance.Fixtures{}, errors.New("the file is empty")
		}
		return conformance.Fixtures{}, err
	}
	if f.Version != 1 {
		return conformance.Fixtures{}, fmt.Errorf("version is %d; this command reads version 1", f.Version)
	}
	c := f.Customer
	if c.LoginHint == "" && c.BankConsentID == "" {
		return conformance.Fixtures{}, errors.New("customer needs login_hint or bank_consent_id")
	}
	if c.LoginHint != "" && c.GoodCode == "" {
		return conformance.Fixtures{}, errors.New("customer.login_hint needs customer.good_code, the code that links them")
	}
	fx := conformance.Fixtures{
		LoginHint: c.LoginHint, GoodCode: c.GoodCode, BadCode: c.BadCode, BankConsentID: c.BankConsentID,
		UnknownLoginHint: f.UnknownLoginHint, PromptEvents: f.PromptEvents,
	}
	for _, s := range f.Scopes {
		v, ok := commonv1.Scope_value[s]
		if !ok || v == 0 {
			return conformance.Fixtures{}, fmt.Errorf("scopes: %q is not a bankbridge.common.v1.Scope (e.g. SCOPE_ACCOUNTS)", s)
		}
		fx.Scopes = append(fx.Scopes, commonv1.Scope(v))
	}
	for _, o := range []struct {
		name string
		in   *otherCust
		out  *conformance.Customer
	}{{"second_customer", f.SecondCustomer, &fx.SecondCustomer}, {"unavailable_customer", f.UnavailableCustomer, &fx.UnavailableCustomer}} {
		if o.in == nil {
			continue
		}
		if o.in.LoginHint == "" && o.in.BankConsentID == "" {
			return conformance.Fixtures{}, fmt.Errorf("%s needs login_hint or bank_consent_id (or leave it out)", o.name)
		}
		*o.out = conformance.Customer{LoginHint: o.in.LoginHint, BankConsentID: o.in.BankConsentID}
	}
	if f.CallTimeout != "" {
		d, err := time.ParseDuration(f.CallTimeout)
		if err != nil || d <= 0 {
			return conformance.Fixtures{}, fmt.Errorf("call_timeout %q is not a positive duration such as 10s", f.CallTimeout)
		}
		fx.CallTimeout = d
	}
	var err error
	if fx.TriggerEvent, err = f.TriggerEvent.build("trigger_event"); err != nil {
		return conformance.Fixtures{}, err
	}
	if fx.TriggerFraudAlert, err = f.TriggerFraudAlert.build("trigger_fraud_alert"); err != nil {
		return conformance.Fixtures{}, err
	}
	if fx.PromptEvents && fx.TriggerEvent == nil {
		return conformance.Fixtures{}, errors.New("prompt_events needs trigger_event, to know when the kit's event stream is live")
	}
	return fx, nil
}

// build returns the function that sends the request; nil without one.
func (h *httpTrigger) build(name string) (func(context.Context) error, error) {
	if h == nil {
		return nil, nil
	}
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s.url must be an absolute http or https URL", name)
	}
	method := h.Method
	if method == "" {
		method = http.MethodPost
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if h.CAFile != "" {
		pem, err := os.ReadFile(h.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s holds no PEM certificate", name, h.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	client := &http.Client{Timeout: triggerTimeout, Transport: tr}
	target := u.String()
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return err
		}
		for k, v := range h.Header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %s %s answered %s", name, method, u.Redacted(), resp.Status)
		}
		return nil
	}, nil
}
