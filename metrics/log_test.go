package metrics

import (
	"io"
	"log/slog"
)

// slogTo is a logger that writes text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
