package certs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// DevMaxTTL bounds the certificates of a development PKI (SetUpDev): a
// process may ask for up to a day.
const DevMaxTTL = 24 * time.Hour

// devRootTTL is the development root CA's life: longer than any dev stack
// runs.
const devRootTTL = 10 * 365 * 24 * time.Hour

// DevRole returns the parameters of the PKI role a development or test
// Vault gives the process name: certificates whose names are name,
// localhost and IP addresses only, usable as server and client
// certificates, with EC P-256 keys, for at most DevMaxTTL, and not stored
// in Vault (short-lived certificates would fill it). A production role is
// the same with the process's DNS names in allowed_domains.
func DevRole(name string) map[string]any {
	return map[string]any{
		"allowed_domains":             name + ",localhost",
		"allow_bare_domains":          true,
		"allow_subdomains":            false,
		"allow_glob_domains":          false,
		"allow_wildcard_certificates": false,
		"allow_localhost":             true,
		"allow_ip_sans":               true,
		"enforce_hostnames":           true,
		"server_flag":                 true,
		"client_flag":                 true,
		"key_type":                    "ec",
		"key_bits":                    256,
		"ttl":                         seconds(DefaultTTL),
		"max_ttl":                     seconds(DevMaxTTL),
		"no_store":                    true,
	}
}

// SetUpDev prepares the PKI secrets engine of a development or test Vault
// for the processes names: it mounts the engine at mount unless it is
// there, generates a root CA unless the engine has one, and writes a
// DevRole for each name (role = name). client must be allowed all that
// (root, in a dev Vault). It returns the CA's PEM, the trust anchor of
// every certificate the roles issue.
func SetUpDev(ctx context.Context, client *api.Client, mount string, names []string) (string, error) {
	err := client.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: "pki",
		Config: api.MountConfigInput{MaxLeaseTTL: seconds(devRootTTL)}})
	if err != nil && !strings.Contains(err.Error(), "path is already in use") {
		return "", fmt.Errorf("mount the PKI engine at %s/: %w", mount, err)
	}
	ca, err := caPEM(ctx, client, mount)
	if err != nil {
		return "", err
	}
	if ca == "" {
		root, err := client.Logical().WriteWithContext(ctx, mount+"/root/generate/internal", map[string]any{
			"common_name": "bankbridge development CA", "ttl": seconds(devRootTTL), "key_type": "ec", "key_bits": 256,
		})
		if err != nil {
			return "", fmt.Errorf("generate the root CA at %s/: %w", mount, err)
		}
		if root == nil || root.Data["certificate"] == nil {
			return "", fmt.Errorf("generate the root CA at %s/: no certificate in the answer", mount)
		}
		ca, _ = root.Data["certificate"].(string)
	}
	for _, name := range names {
		if _, err := client.Logical().WriteWithContext(ctx, mount+"/roles/"+name, DevRole(name)); err != nil {
			return "", fmt.Errorf("write the PKI role %s: %w", name, err)
		}
	}
	return ca, nil
}

// caPEM reads the PKI engine's CA, "" when it has no issuer yet.
func caPEM(ctx context.Context, client *api.Client, mount string) (string, error) {
	issuers, err := client.Logical().ListWithContext(ctx, mount+"/issuers")
	if err != nil {
		return "", fmt.Errorf("list the issuers of %s/: %w", mount, err)
	}
	if issuers == nil || len(issuers.Data) == 0 {
		return "", nil // Vault answers 404, which the client reads as no secret
	}
	ca, err := client.Logical().ReadWithContext(ctx, mount+"/cert/ca")
	if err != nil {
		return "", fmt.Errorf("read the CA of %s/: %w", mount, err)
	}
	var pem string
	if ca != nil {
		pem, _ = ca.Data["certificate"].(string)
	}
	if pem == "" {
		return "", fmt.Errorf("read the CA of %s/: no certificate in the answer", mount)
	}
	return pem, nil
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }
