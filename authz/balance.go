package authz

import (
	"errors"
	"strings"
)

// ErrBalanceFormat is returned for a balance that is not a plain decimal.
var ErrBalanceFormat = errors.New(`balance: want a decimal such as "12.50" or "-3"`)

// Limits on a balance's digits, far beyond any real amount.
const (
	maxBalanceIntDigits  = 30
	maxBalanceFracDigits = 18
)

// Balance is an exact decimal amount of credit. The zero value is zero.
type Balance struct {
	text     string
	positive bool
}

// ParseBalance parses an optional minus sign, 1 to 30 digits and optionally a
// point and 1 to 18 digits. It does no rounding: "0.000001" is positive.
func ParseBalance(s string) (Balance, error) {
	digits := s
	negative := len(s) > 0 && s[0] == '-'
	if negative {
		digits = s[1:]
	}
	intPart, frac, hasPoint := strings.Cut(digits, ".")
	if !allDigits(intPart, maxBalanceIntDigits) || hasPoint && !allDigits(frac, maxBalanceFracDigits) {
		return Balance{}, ErrBalanceFormat
	}
	nonZero := !onlyZeros(intPart) || !onlyZeros(frac)
	return Balance{text: s, positive: nonZero && !negative}, nil
}

func allDigits(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func onlyZeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// Positive reports whether the balance is greater than zero.
func (b Balance) Positive() bool { return b.positive }

// String returns the balance as it was written; "0" for the zero value.
func (b Balance) String() string {
	if b.text == "" {
		return "0"
	}
	return b.text
}
