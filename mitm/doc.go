// Package mitm is a fault-injecting man-in-the-middle TCP proxy.
//
// A Proxy accepts connections, dials a target for each one and pumps bytes
// in both directions (up is client to server, down is server to client)
// through a pipeline of faults: byte corruption, cuts (removed runs),
// duplicated runs, injected garbage, resets after a byte count or a
// duration, refused reconnections, black holes (stalls), latency, jitter,
// bandwidth limits and slicing into small writes. It can also hex-dump the
// traffic and log every fault as one JSON line.
//
// Every byte-level decision is a function of (seed, connection number,
// direction, byte offset in that direction's input stream), so a run with the
// same seed and the same input replays exactly, whatever the TCP
// segmentation. Faults can be changed while the proxy runs with
// Proxy.SetFaults; a zero Faults is a clean, byte-exact passthrough.
package mitm
