// Package proto is the session protocol of resh (spec.md beside this file):
// messages on a multiplexed connection, with one stream per channel
// (control, stdin, stdout, stderr, and one per lcat/ltee transfer), each
// with its own flow control, over a connection.Peer.
package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"
)

// Version is the protocol version in spec.md, bumped on incompatible change.
const Version = 1

// MaxMessage bounds a message body; a longer length is refused before any
// allocation.
const MaxMessage = 64 << 10

// Type is a message type, the byte after the length.
type Type byte

// Message types. Each body is a JSON object of the type named in the comment.
const (
	TypeOpen           Type = 1  // Open: first message of a stream the client opens
	TypeHello          Type = 2  // Hello: client asks for a command (control stream)
	TypeStarted        Type = 3  // Started: the command runs
	TypeError          Type = 4  // Error: a request failed
	TypeResize         Type = 5  // Resize: the client's terminal changed size
	TypeSignal         Type = 6  // Signal: deliver a signal to the command
	TypeExit           Type = 7  // Exit: the command ended
	TypeTransferOpen   Type = 8  // TransferOpen: first message of a transfer stream
	TypeTransferReply  Type = 9  // TransferReply: the client accepts or refuses a transfer
	TypeTransferResult Type = 10 // TransferResult: the client finished writing a file
	TypeOutputClosed   Type = 20 // OutputClosed: the reader of the client's stdout or stderr is gone
	TypeQueued         Type = 21 // Queued: the session waits for a free executor (before Started)
	TypeGone           Type = 22 // Gone: the executor running the command is lost (final, after Started)
	TypeExecutors      Type = 23 // Executors: the answer to a Hello with Query "executors"
	TypeVerdict        Type = 24 // Verdict: how a submitted program ended (before Exit)
)

// Stream kinds, in Open.Kind.
const (
	KindControl = "control"
	KindStdin   = "stdin"
	KindStdout  = "stdout"
	KindStderr  = "stderr"
)

// Open starts each stream the client opens.
type Open struct {
	Kind string `json:"kind"`
}

// Hello asks the server to run a command. An empty Command asks for the
// user's login shell. A non-empty User names the account the client wants
// the command run as; a server that runs commands as another account
// refuses the session with an Error.
type Hello struct {
	Version int               `json:"version"`
	Command string            `json:"command,omitempty"`
	User    string            `json:"user,omitempty"`
	TTY     bool              `json:"tty"`
	Term    string            `json:"term,omitempty"`
	Rows    uint16            `json:"rows,omitempty"`
	Cols    uint16            `json:"cols,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// On names the executor that must run the command (resh -on NAME);
	// empty lets the master choose (spec.md §5).
	On string `json:"on,omitempty"`
	// Query, when not empty, asks a question instead of running a
	// command: QueryExecutors is answered by an Executors message, then
	// the server closes the session.
	Query string `json:"query,omitempty"`
	// Job, when set, submits a program instead of a command (reshjob,
	// spec.md §7): its source is the first Job.Size bytes of the stdin
	// stream, the program's own stdin follows. Command and TTY are then
	// ignored.
	Job *Job `json:"job,omitempty"`
	// JobRequest names the job (or the jobs) of a durable jobs' Query
	// (spec.md §8).
	JobRequest *JobRequest `json:"job_request,omitempty"`
}

// Job describes a submitted program: its language, its arguments and the
// limits asked for it (zero: the executor's default; each is capped by
// the executor's ceiling).
type Job struct {
	Lang   string    `json:"lang"`
	Name   string    `json:"name,omitempty"` // the file's name as the user gave it
	Size   int64     `json:"size"`           // bytes of source at the start of stdin
	Args   []string  `json:"args,omitempty"`
	Limits JobLimits `json:"limits,omitzero"`
}

// JobLimits are the limits a job asks for; zero fields take the
// executor's defaults.
type JobLimits struct {
	WallMS int64 `json:"wall_ms,omitempty"`
	CPUMS  int64 `json:"cpu_ms,omitempty"`
	Memory int64 `json:"memory,omitempty"` // bytes
	Procs  int   `json:"procs,omitempty"`
	Output int64 `json:"output,omitempty"` // bytes per stream
}

// Verdicts, in Verdict.Verdict.
const (
	VerdictOK           = "OK"
	VerdictCompileError = "COMPILE_ERROR"
	VerdictRuntimeError = "RUNTIME_ERROR"
	VerdictTimeLimit    = "TIME_LIMIT"
	VerdictMemoryLimit  = "MEMORY_LIMIT"
	VerdictOutputLimit  = "OUTPUT_LIMIT"
	VerdictSandboxError = "SANDBOX_ERROR"
)

// Exit codes for the verdicts that have no program status (the Exit the
// server sends, and reshjob's status): distinct, and 124 for a time limit
// as timeout(1).
const (
	ExitCompileError = 121
	ExitOutputLimit  = 122
	ExitMemoryLimit  = 123
	ExitTimeLimit    = 124
	ExitSandboxError = 125
)

// Verdict says how a submitted program ended; it comes before Exit, whose
// code is the program's status, or for the verdicts that have none the
// code reshjob exits with (spec.md §7).
type Verdict struct {
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail,omitempty"`
	Status     int    `json:"status"`
	Signal     int    `json:"signal,omitempty"`
	WallMS     int64  `json:"wall_ms"`
	CPUMS      int64  `json:"cpu_ms"`
	PeakMemory int64  `json:"peak_memory,omitempty"`
	Stdout     int64  `json:"stdout"`
	Stderr     int64  `json:"stderr"`
	Executor   string `json:"executor,omitempty"`
	Unsafe     bool   `json:"unsafe,omitempty"` // run without the sandbox (reshd -unsafe-no-sandbox)
}

// QueryExecutors in Hello.Query asks for the table of executors.
const QueryExecutors = "executors"

// Queued tells a client that its session waits for a free executor, with
// Ahead sessions before it in the queue. It may come any number of times
// before Started or Error.
type Queued struct {
	Ahead int `json:"ahead"`
}

// Gone ends a session whose command was running on an executor that the
// master lost: the command's fate is unknown, no Exit will come. Message is
// for the user ("executor NAME lost").
type Gone struct {
	Message string `json:"message"`
}

// Executor states in ExecutorInfo.State.
const (
	StateUp       = "up"       // takes work
	StateFull     = "full"     // at its task or CPU limit
	StateLost     = "lost"     // its link is down, waiting for it to resume
	StateStarting = "starting" // a local executor being started
)

// ExecutorInfo describes one executor, in Executors.
type ExecutorInfo struct {
	Name      string    `json:"name"`
	Addr      string    `json:"addr,omitempty"` // where its link comes from; "in-process" for a standalone reshd
	State     string    `json:"state"`
	Tasks     int       `json:"tasks"`
	MaxTasks  int       `json:"max_tasks"` // 0: no limit
	CPU       float64   `json:"cpu"`       // percent of all cores, last sample
	MaxCPU    float64   `json:"max_cpu"`   // percent; 100: no limit
	Languages []string  `json:"languages,omitempty"`
	Version   string    `json:"version,omitempty"`
	Since     time.Time `json:"since"` // joined (or started) at
}

// Executors answers a Hello with Query QueryExecutors, sorted by name.
type Executors struct {
	Executors []ExecutorInfo `json:"executors"`
}

// Started says the command runs.
type Started struct {
	PID int `json:"pid"`
}

// Error reports a failed request.
type Error struct {
	Message string `json:"message"`
}

// Resize carries a new terminal size.
type Resize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Signal names a signal to deliver to the command's process group: one of
// INT, TERM, HUP, QUIT, KILL, USR1, USR2.
type Signal struct {
	Name string `json:"name"`
}

// Exit reports how the command ended: Signal is non-zero when a signal
// killed it.
type Exit struct {
	Code   int  `json:"code"`
	Signal int  `json:"signal,omitempty"`
	Core   bool `json:"core,omitempty"`
}

// OutputClosed tells the server that the reader of the client's stdout or
// stderr (Stream: KindStdout or KindStderr) went away: the command's writes
// to that output must fail from now on, as a write to a pipe whose reader
// exited does (spec.md §2).
type OutputClosed struct {
	Stream string `json:"stream"`
}

// Transfer operations.
const (
	OpRead   = "read"   // lcat: the client sends the file
	OpWrite  = "write"  // ltee: the client truncates and writes the file
	OpAppend = "append" // ltee -a: the client appends to the file
)

// TransferOpen starts a transfer stream (server to client), and is also
// what lcat and ltee send to reshd on its local socket.
type TransferOpen struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	// Tool names the program asking ("lcat", "ltee"), for the progress line.
	Tool string `json:"tool,omitempty"`
	// Chunks: reshd offers to send a write's data in chunks (spec.md §3.4).
	Chunks bool `json:"chunks,omitempty"`
}

// TransferReply accepts (OK) or refuses a transfer. For OpRead, Size is the
// file's size when known (-1 otherwise).
type TransferReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Size  int64  `json:"size,omitempty"`
	// Chunks: the client takes the offered chunks (spec.md §3.4).
	Chunks bool `json:"chunks,omitempty"`
}

// TransferResult ends a write transfer: the client wrote Bytes bytes and
// closed the file, or failed.
type TransferResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Bytes int64  `json:"bytes"`
}

// Errors of the codec.
var (
	// ErrTooLong is returned for a message whose length exceeds MaxMessage.
	ErrTooLong = errors.New("session protocol: message too long")
	// ErrUnexpected is returned when a message of another type was expected.
	ErrUnexpected = errors.New("session protocol: unexpected message")
)

// WriteMessage writes one message: length (4 bytes, big-endian, of type and
// body), type (1 byte), JSON body.
func WriteMessage(w io.Writer, t Type, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("session protocol: encode %T: %w", v, err)
	}
	if len(body) > MaxMessage {
		return ErrTooLong
	}
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(1+len(body)))
	b[4] = byte(t)
	_, err = w.Write(append(b, body...))
	return err
}

// ReadMessage reads one message and returns its type and body.
func ReadMessage(r io.Reader) (Type, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < 1 || n-1 > MaxMessage {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("session protocol: truncated message: %w", io.ErrUnexpectedEOF)
	}
	return Type(h[4]), body, nil
}

// Decode parses a body into v, refusing unknown fields' types of mistakes.
func Decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("session protocol: decode %T: %w", v, err)
	}
	return nil
}

// Expect reads one message of type t into v. An Error message becomes an
// error carrying its text.
func Expect(r io.Reader, t Type, v any) error {
	got, body, err := ReadMessage(r)
	if err != nil {
		return err
	}
	if got == TypeError && t != TypeError {
		var e Error
		if err := Decode(body, &e); err != nil {
			return err
		}
		return &RemoteError{Message: e.Message}
	}
	if got != t {
		return fmt.Errorf("%w: got type %d, want %d", ErrUnexpected, got, t)
	}
	return Decode(body, v)
}

// RemoteError is an Error message received from the peer.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// MuxConfig is the multiplexer's configuration: no keepalives (the
// connection package handles liveness), and no timeouts that a network
// outage, which the connection rides out, would trip.
func MuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.ConnectionWriteTimeout = 24 * time.Hour
	c.StreamOpenTimeout = 0
	c.StreamCloseTimeout = 0
	c.AcceptBacklog = 256
	c.LogOutput = io.Discard
	return c
}
