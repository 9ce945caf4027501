// Package mitm is a fault-injecting man-in-the-middle TCP proxy.
//
// A Proxy accepts connections, dials a target for each one and pumps bytes
// in both directions (up is client to server, down is server to client)
// through a pipeline of faults: tampering (an attacker that alters the
// payload of resh DATA frames and fixes up their CRC), byte corruption,
// cuts (removed runs), duplicated runs, injected garbage, resets after a
// byte count or a duration, refused reconnections, black holes (stalls),
// latency, jitter, bandwidth limits and slicing into small writes. It can
// also hex-dump the traffic and log every fault as one JSON line.
//
// Every byte-level decision is a function of (seed, connection number,
// direction, byte offset in that direction's input stream), so a run with the
// same seed and the same input replays exactly, whatever the TCP
// segmentation. Faults can be changed while the proxy runs with
// Proxy.SetFaults; a zero Faults is a clean, byte-exact passthrough.
// Connections are numbered from 1 in the order they are accepted (refused
// ones included).
//
// At each input offset k of a direction, in this order: Inject inserts
// garbage before byte k; Dup repeats the last bytes delivered before byte
// k; Cut removes a run of bytes starting at k; Corrupt replaces byte k.
// DropAfter and StallAfter count input bytes.
//
// Tamper comes first, on the input, and never changes its length, so the
// faults above see the same offsets. It parses the frames of the resh
// connection protocol (connection/spec.md §1) as a receiver does, across
// any segmentation, and replaces payload bytes of DATA frames, then
// recomputes the frame's pcrc: the header (and hcrc) is unchanged and the
// frame passes every check. Only encryption and authentication above the
// connection (TLS) can tell. Bytes that are not frames, other frames and
// DATA frames whose CRCs fail pass untouched. A DATA frame is held until
// its pcrc has arrived (at most 1 MiB + 36 bytes); everything else streams.
//
// # Log
//
// Config.Log receives one JSON object per line. A fault:
//
//	{"conn":3,"dir":"up","offset":1234,"kind":"cut","len":17}
//
// where kind is corrupt, tamper, cut, dup, inject, drop, stall or refuse,
// offset is the input offset in that direction (of the byte replaced, for
// corrupt and tamper; -1 and dir "both" for refusals and DropAll), and len
// the bytes replaced, removed, repeated or inserted. A connection whose
// target cannot be dialled:
//
//	{"conn":4,"kind":"dial-error","error":"..."}
//
// and, when a connection ends, the bytes read from the sender (in) and
// written to the receiver (out) in each direction with their SHA-256:
//
//	{"conn":3,"kind":"close","reason":"eof","up":{"in":10,"out":10,
//	"in_sha256":"...","out_sha256":"..."},"down":{...}}
//
// where reason is eof, drop, drop-all, error (a side failed or reset; the
// reset is passed on) or closed (Proxy.Close).
package mitm
