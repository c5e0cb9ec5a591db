// Package cli holds what the commands share on the command line: flag values
// that parse sizes, durations and log levels with errors that say what is
// wanted, and the version a binary reports. It has no state and starts
// nothing.
package cli
