// Package events connects footstep-authz to NATS (work in progress).
package events
