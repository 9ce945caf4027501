package sandbox

import (
	"errors"
	"os"
	"sync"
)

// Pool keeps sandboxes built ahead of need, each in a fresh work
// directory of its own, so that a job starts in one at once: building a
// sandbox (bwrap, its namespaces and mounts, and moving it into its
// cgroup, which can wait for an RCU grace period on cgroup v1) costs
// 10–30 ms, paid while the machine waits for work rather than by the
// next job. A sandbox is handed out once (Get) and its taker closes it,
// which removes its work directory; the Pool then builds another.
//
// A Pool builds nothing before its first Get, so that a reshd that never
// runs a program keeps no sandbox.
type Pool struct {
	base string
	size int
	opts Options

	ready chan *Sandbox

	mu      sync.Mutex
	filling bool
	closed  bool
	fills   sync.WaitGroup
}

// NewPool returns a Pool that keeps up to size sandboxes (at least 1)
// built with opts (Dir ignored), each in a new directory under base,
// which must be searchable by others when reshd runs as root (ErrDirHidden;
// os.TempDir() is).
func NewPool(base string, size int, opts Options) *Pool {
	size = max(size, 1)
	return &Pool{base: base, size: size, opts: opts, ready: make(chan *Sandbox, size)}
}

// ErrPoolClosed is Get's error once the Pool is closed.
var ErrPoolClosed = errors.New("sandbox: the pool is closed")

// Get returns a sandbox ready for commands, in an empty work directory
// (Sandbox.Dir) that its Close removes: a built one when the Pool has one,
// else one built now. Either way the Pool builds more in the background.
// Errors are Start's.
func (p *Pool) Get() (*Sandbox, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	p.mu.Unlock()
	defer p.fill()
	for {
		select {
		case sb := <-p.ready:
			if sb.alive() {
				return sb, nil
			}
			sb.Close()
			continue
		default:
		}
		return p.build()
	}
}

// build makes a work directory and a sandbox in it.
func (p *Pool) build() (*Sandbox, error) { return StartTemp(p.base, p.opts) }

// StartTemp is Start in a new work directory under base (opts.Dir
// ignored), which the sandbox's Close removes. base must be searchable by
// others when reshd runs as root (ErrDirHidden; os.TempDir() is).
func StartTemp(base string, opts Options) (*Sandbox, error) {
	dir, err := os.MkdirTemp(base, "resh-job-") // 0700
	if err != nil {
		return nil, &StartError{"sandbox: making the work directory: " + err.Error()}
	}
	opts.Dir = dir
	sb, err := Start(opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	sb.ownDir = true
	return sb, nil
}

// fill starts building sandboxes in the background until size are ready,
// unless that is under way.
func (p *Pool) fill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.filling || p.closed || len(p.ready) >= p.size {
		return
	}
	p.filling = true
	p.fills.Add(1)
	go func() {
		defer p.fills.Done()
		for {
			p.mu.Lock()
			if p.closed || len(p.ready) >= p.size {
				p.filling = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			sb, err := p.build()
			if err != nil {
				// The next Get builds its own and says why.
				p.mu.Lock()
				p.filling = false
				p.mu.Unlock()
				return
			}
			select {
			case p.ready <- sb:
			default:
				sb.Close()
			}
		}
	}()
}

// Close closes the sandboxes not handed out and stops building more. The
// ones handed out are their takers' to close.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.fills.Wait()
	for {
		select {
		case sb := <-p.ready:
			sb.Close()
		default:
			return
		}
	}
}
