package mitm

import "encoding/json"

// faultLine is the JSON log line of one fault.
type faultLine struct {
	Conn   uint64 `json:"conn"`
	Dir    string `json:"dir"`
	Offset int64  `json:"offset"`
	Kind   string `json:"kind"`
	Len    int    `json:"len"`
}

// errorLine is the JSON log line of a connection that could not be served.
type errorLine struct {
	Conn  uint64 `json:"conn"`
	Kind  string `json:"kind"`
	Error string `json:"error"`
}

// dirSummary is one direction in a closeLine: bytes and SHA-256 before
// (in) and after (out) the proxy.
type dirSummary struct {
	In        int64  `json:"in"`
	Out       int64  `json:"out"`
	InSHA256  string `json:"in_sha256,omitempty"`
	OutSHA256 string `json:"out_sha256,omitempty"`
}

// closeLine is the JSON log line written when a connection ends.
type closeLine struct {
	Conn   uint64     `json:"conn"`
	Kind   string     `json:"kind"`
	Reason string     `json:"reason"`
	Up     dirSummary `json:"up"`
	Down   dirSummary `json:"down"`
}

// logEvent writes v as one JSON line to Config.Log.
func (p *Proxy) logEvent(v any) {
	if p.cfg.Log == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	p.outMu.Lock()
	defer p.outMu.Unlock()
	p.cfg.Log.Write(b)
}

// logFault logs one fault of connection id in direction d (d < 0: both).
func (p *Proxy) logFault(id uint64, d dir, off int64, kind, n int) {
	if p.cfg.Log == nil {
		return
	}
	p.logEvent(faultLine{Conn: id, Dir: d.String(), Offset: off, Kind: kindNames[kind], Len: n})
}
