package carrier

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Valid numbers used below, each worked through its algorithm:
//
//   - UPS 1Z999AA10123456784 (UPS's published example): over 999AA1012345678,
//     A=2, odd positions 9+9+2+0+2+4+6+8 = 40, even positions
//     2×(9+2+1+1+3+5+7) = 56; 96 → check 4.
//   - FedEx Express 986578788855 (jkeen/tracking_number_data): 98657878885
//     weighted 1,3,7 … from the right sums to 269; 269 mod 11 = 5.
//   - FedEx Ground 041441760228964 (jkeen): 04144176022896 weighted 3,1 …
//     from the right sums to 116 → check 4.
//   - FedEx SSCC 00000123450000000027 (FedEx Ground label specification,
//     (00) 0 0012345 000000002): 24 + 9 = 33 → check 7.
//   - FedEx 96 9611020987654312345672 (jkeen): GS1 over its tracking number
//     98765431234567 sums to 138 → check 2. Over all 21 digits it would be 3,
//     so the number is not a valid USPS IMpb.
//   - USPS IMpb 9400111201080805483016 (jkeen): GS1 over 21 digits sums to
//     94 → check 6.
//   - Ambiguous 9612020987654312345672: the FedEx 96 number above with SCNC
//     12 and service 020; "9612020" adds 9×3+6+1×3+2+0+2+0×3 = 40 to the
//     21-digit GS1 sum, so the check digit 2 is right for USPS too.
//   - S10 RR123456785DE and EA123456785US: 12345678 weighted 8,6,4,2,3,5,9,7
//     sums to 204; 204 mod 11 = 6; 11 - 6 = 5. RR123456710DE: 12345671 sums
//     to 155, mod 11 = 1, 11 - 1 = 10 → 0. RR123456745DE: 12345674 sums to
//     176, mod 11 = 0, 11 - 0 = 11 → 5.
//   - DHL Express 3318810025 (jkeen): 331881002 mod 7 = 5.
//   - Sandbox: Luhn over 000000001 … 000000004 gives 8, 6, 4, 2; over
//     000000000 it gives 0, so SBX0000000001 has a wrong check digit.
func TestDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		number string
		want   []string // carriers detected; nil when an error is wanted
		// Exactly one of the following when want is nil.
		wantErr        error    // a sentinel, compared with errors.Is
		wantCheckDigit []string // the carriers of the *CheckDigitError
	}{
		{name: "UPS", number: "1Z999AA10123456784", want: []string{UPS}},
		{name: "UPS lower case with spaces", number: "1z 999 aa1 01 2345 678 4", want: []string{UPS}},
		{name: "UPS wrong check digit", number: "1Z999AA10123456783", wantCheckDigit: []string{UPS}},
		{name: "UPS letter as check digit", number: "1Z999AA1012345678A", wantCheckDigit: []string{UPS}},
		{name: "UPS too short", number: "1Z999AA1012345678", wantErr: ErrNoCarrier},
		{name: "UPS too long", number: "1Z999AA101234567840", wantErr: ErrNoCarrier},
		{name: "UPS punctuation", number: "1Z999AA1012345678.", wantErr: ErrNoCarrier},

		{name: "FedEx Express 12 digits", number: "986578788855", want: []string{FedEx}},
		{name: "FedEx Express hyphenated", number: "9865-7878-8855", want: []string{FedEx}},
		{name: "FedEx Express wrong check digit", number: "986578788854", wantCheckDigit: []string{FedEx}},
		{name: "FedEx Ground 15 digits", number: "041441760228964", want: []string{FedEx}},
		{name: "FedEx Ground wrong check digit", number: "041441760228965", wantCheckDigit: []string{FedEx}},
		{name: "FedEx SSCC 20 digits", number: "00000123450000000027", want: []string{FedEx}},
		{name: "FedEx SSCC wrong check digit", number: "00000123450000000028", wantCheckDigit: []string{FedEx}},
		{name: "FedEx 96 only FedEx when the USPS check fails", number: "9611020987654312345672", want: []string{FedEx}},
		{name: "FedEx 96 with spaces", number: "96 11 020 9876543 1234567 2", want: []string{FedEx}},

		{name: "USPS IMpb 22 digits", number: "9400111201080805483016", want: []string{USPS}},
		{name: "USPS IMpb wrong check digit", number: "9400111201080805483017", wantCheckDigit: []string{USPS}},
		{name: "USPS S10", number: "EA123456785US", want: []string{USPS}},
		{name: "USPS S10 wrong check digit", number: "EA123456786US", wantCheckDigit: []string{USPS}},
		{name: "20 digits not starting 00", number: "94001112010808054830", wantErr: ErrNoCarrier},

		{name: "ambiguous FedEx 96 and USPS", number: "9612020987654312345672", want: []string{FedEx, USPS}},
		{name: "ambiguous format, both check digits wrong", number: "9612020987654312345673", wantCheckDigit: []string{FedEx, USPS}},

		{name: "DHL Express", number: "3318810025", want: []string{DHLExpress}},
		{name: "DHL Express wrong check digit", number: "3318810026", wantCheckDigit: []string{DHLExpress}},
		{name: "11 digits", number: "33188100251", wantErr: ErrNoCarrier},

		{name: "S10 Deutsche Post", number: "RR123456785DE", want: []string{"post-de"}},
		{name: "S10 lower case with hyphens", number: "rr-123-456-785-de", want: []string{"post-de"}},
		{name: "S10 check 10 becomes 0", number: "RR123456710DE", want: []string{"post-de"}},
		{name: "S10 check 11 becomes 5", number: "RR123456745DE", want: []string{"post-de"}},
		{name: "S10 wrong check digit", number: "RR123456784DE", wantCheckDigit: []string{"post-de"}},
		{name: "S10 digit in service", number: "R1123456785DE", wantErr: ErrNoCarrier},
		{name: "S10 digit in country", number: "RR123456785D1", wantErr: ErrNoCarrier},
		{name: "S10 serial too short", number: "RR12345675DE", wantErr: ErrNoCarrier},

		{name: "sandbox delivered", number: SandboxDelivered, want: []string{Sandbox}},
		{name: "sandbox exception", number: SandboxException, want: []string{Sandbox}},
		{name: "sandbox returned", number: SandboxReturned, want: []string{Sandbox}},
		{name: "sandbox failed then delivered", number: SandboxFailedThenDelivered, want: []string{Sandbox}},
		{name: "sandbox lower case", number: "sbx 000000003 4", want: []string{Sandbox}},
		{name: "sandbox wrong check digit", number: "SBX0000000001", wantCheckDigit: []string{Sandbox}},
		{name: "sandbox too long", number: "SBX00000000018", wantErr: ErrNoCarrier},
		{name: "sandbox wrong prefix", number: "SBY0000000018", wantErr: ErrNoCarrier},

		{name: "empty", number: "", wantErr: ErrNoCarrier},
		{name: "only separators", number: " - ", wantErr: ErrNoCarrier},
		{name: "letters where digits go", number: "98657878885O", wantErr: ErrNoCarrier},
		{name: "non-ASCII letter not upper-cased into a match", number: "1Z999AA1012345678ſ", wantErr: ErrNoCarrier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Detect(tt.number)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Detect(%q) = %q, want %q", tt.number, got, tt.want)
			}
			checkErr(t, err, tt.number, tt.wantErr, tt.wantCheckDigit)
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		carrier        string
		number         string
		wantErr        error
		wantCheckDigit []string
	}{
		{name: "UPS number for UPS", carrier: UPS, number: "1Z999AA10123456784"},
		{name: "UPS number for FedEx", carrier: FedEx, number: "1Z999AA10123456784", wantErr: ErrNoCarrier},
		{name: "UPS wrong check digit", carrier: UPS, number: "1Z999AA10123456783", wantCheckDigit: []string{UPS}},
		{name: "FedEx Express", carrier: FedEx, number: "986578788855"},
		{name: "FedEx 96 for FedEx", carrier: FedEx, number: "9611020987654312345672"},
		{name: "FedEx 96 for USPS fails the IMpb check", carrier: USPS, number: "9611020987654312345672", wantCheckDigit: []string{USPS}},
		{name: "ambiguous number for FedEx", carrier: FedEx, number: "9612020987654312345672"},
		{name: "ambiguous number for USPS", carrier: USPS, number: "9612020987654312345672"},
		{name: "ambiguous number, wrong check digit, names only the carrier asked", carrier: USPS, number: "9612020987654312345673", wantCheckDigit: []string{USPS}},
		{name: "USPS S10", carrier: USPS, number: "EA123456785US"},
		{name: "S10 for its post", carrier: "post-de", number: "RR123456785DE"},
		{name: "S10 for another post", carrier: "post-fr", number: "RR123456785DE", wantErr: ErrNoCarrier},
		{name: "S10 wrong check digit", carrier: "post-de", number: "RR123456784DE", wantCheckDigit: []string{"post-de"}},
		{name: "DHL Express wrong check digit", carrier: DHLExpress, number: "3318810026", wantCheckDigit: []string{DHLExpress}},
		{name: "sandbox normalised", carrier: Sandbox, number: "sbx-000000003-4"},
		{name: "sandbox number for DHL", carrier: DHLExpress, number: SandboxReturned, wantErr: ErrNoCarrier},
		{name: "unknown carrier", carrier: "dhl", number: "3318810025", wantErr: ErrUnsupported},
		{name: "carrier code in upper case", carrier: "UPS", number: "1Z999AA10123456784", wantErr: ErrUnsupported},
		{name: "US post is USPS", carrier: "post-us", number: "EA123456785US", wantErr: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.carrier, tt.number)
			checkErr(t, err, tt.number, tt.wantErr, tt.wantCheckDigit)
		})
	}
}

func TestSupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		carrier string
		want    bool
	}{
		{UPS, true},
		{FedEx, true},
		{USPS, true},
		{DHLExpress, true},
		{Sandbox, true},
		{"post-de", true},
		{"post-gb", true},
		{"", false},
		{"UPS", false},
		{"dhl", false},
		{"post-", false},
		{"post-d", false},
		{"post-deu", false},
		{"post-DE", false},
		{"post-d1", false},
		{"post-us", false},
		{"de", false},
	}
	for _, tt := range tests {
		t.Run(tt.carrier, func(t *testing.T) {
			t.Parallel()
			if got := Supported(tt.carrier); got != tt.want {
				t.Errorf("Supported(%q) = %v, want %v", tt.carrier, got, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		number string
		want   string
	}{
		{name: "already normal", number: "1Z999AA10123456784", want: "1Z999AA10123456784"},
		{name: "lower case, spaces, hyphens, tab", number: " 1z-999 aa1\t01 ", want: "1Z999AA101"},
		{name: "non-ASCII kept as is", number: "ſé", want: "ſé"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Normalize(tt.number); got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.number, got, tt.want)
			}
		})
	}
}

// checkErr asserts err: nil when neither wantErr nor wantCheckDigit is set,
// wantErr by errors.Is, or a *CheckDigitError naming wantCheckDigit, whose
// message names each carrier and never contains the number.
func checkErr(t *testing.T, err error, number string, wantErr error, wantCheckDigit []string) {
	t.Helper()
	switch {
	case wantCheckDigit != nil:
		var cde *CheckDigitError
		if !errors.As(err, &cde) {
			t.Fatalf("error = %v, want a *CheckDigitError", err)
		}
		if !slices.Equal(cde.Carriers, wantCheckDigit) {
			t.Errorf("CheckDigitError.Carriers = %q, want %q", cde.Carriers, wantCheckDigit)
		}
		msg := cde.Error()
		for _, c := range wantCheckDigit {
			if !strings.Contains(msg, c) {
				t.Errorf("message %q does not name %s", msg, c)
			}
		}
		if n := Normalize(number); strings.Contains(msg, n) || strings.Contains(msg, number) {
			t.Errorf("message %q echoes the number", msg)
		}
	case wantErr != nil:
		if !errors.Is(err, wantErr) {
			t.Errorf("error = %v, want %v", err, wantErr)
		}
	default:
		if err != nil {
			t.Errorf("error = %v, want nil", err)
		}
	}
}
