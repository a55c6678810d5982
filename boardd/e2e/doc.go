// Package e2e holds boardd's end-to-end tests on the host: the whole
// daemon (daemon.New + Run) against a real ipmi_sim generated from the
// emulated board's config, over real TLS, with real containerd for the
// workloads, driven through the clients an operator uses (Redfish SSE,
// gofish, redfishtool, boardctl). It has no code of its own.
package e2e
