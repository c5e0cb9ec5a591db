package authz_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/footstep/authz/authz"
)

type balanceTest struct {
	in       string
	ok       bool
	positive bool
}

// balanceTests also seed FuzzParseBalance.
var balanceTests = []balanceTest{
	{"12.50", true, true},
	{"0.01", true, true},
	{"1", true, true},
	{"100", true, true},
	{"007", true, true},
	{"0.000001", true, true},
	{"0." + strings.Repeat("0", 17) + "1", true, true},
	{strings.Repeat("9", 30), true, true},
	{strings.Repeat("9", 30) + "." + strings.Repeat("9", 18), true, true},
	{"0", true, false},
	{"0.00", true, false},
	{"00.000", true, false},
	{"-0", true, false},
	{"-0.0", true, false},
	{"-0.00", true, false},
	{"-1.5", true, false},
	{"-3", true, false},
	{"-0.000001", true, false},
	{"-" + strings.Repeat("9", 30), true, false},

	{"", false, false},
	{"-", false, false},
	{"--1", false, false},
	{"+1", false, false},
	{"1e5", false, false},
	{"1E5", false, false},
	{".5", false, false},
	{"-.5", false, false},
	{"5.", false, false},
	{"-5.", false, false},
	{".", false, false},
	{"1.2.3", false, false},
	{"1,000", false, false},
	{"1,5", false, false},
	{"1_000", false, false},
	{" 1", false, false},
	{"1 ", false, false},
	{"1\n", false, false},
	{"- 1", false, false},
	{"1.-5", false, false},
	{"0x10", false, false},
	{"1/2", false, false},
	{"Inf", false, false},
	{"NaN", false, false},
	{"\u22121", false, false}, // U+2212 MINUS SIGN
	{"١", false, false},       // ARABIC-INDIC DIGIT ONE
	{"１", false, false},       // FULLWIDTH DIGIT ONE
	{strings.Repeat("9", 31), false, false},
	{"1." + strings.Repeat("0", 19), false, false},
	{"-" + strings.Repeat("1", 31), false, false},
}

func TestParseBalance(t *testing.T) {
	for _, tt := range balanceTests {
		t.Run(tt.in, func(t *testing.T) {
			b, err := authz.ParseBalance(tt.in)
			if !tt.ok {
				if !errors.Is(err, authz.ErrBalanceFormat) {
					t.Errorf("ParseBalance(%q) = %v, %v; want ErrBalanceFormat", tt.in, b, err)
				}
				if b != (authz.Balance{}) {
					t.Errorf("ParseBalance(%q) returned %v with an error; want the zero Balance", tt.in, b)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBalance(%q) = %v; want nil error", tt.in, err)
			}
			if got := b.Positive(); got != tt.positive {
				t.Errorf("ParseBalance(%q).Positive() = %v; want %v", tt.in, got, tt.positive)
			}
			if got := b.String(); got != tt.in {
				t.Errorf("ParseBalance(%q).String() = %q; want %q", tt.in, got, tt.in)
			}
		})
	}
}

func TestBalanceZeroValue(t *testing.T) {
	var b authz.Balance
	if b.Positive() {
		t.Error("Balance{}.Positive() = true; want false")
	}
	if got := b.String(); got != "0" {
		t.Errorf("Balance{}.String() = %q; want %q", got, "0")
	}
}
