package reshdcmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"resh/executor"
	"resh/server"
)

// runExecutor is reshd -join: an executor of the master at o.Join, until
// ctx is done.
func runExecutor(ctx context.Context, o Options, cfg *server.Config, log *slog.Logger, fail func(string, ...any) int, fatal []io.Writer, ready *os.File) int {
	if o.PIDFile != "" {
		if err := writePIDFile(o.PIDFile); err != nil {
			return fail("%v", err)
		}
		defer removePIDFile(o.PIDFile)
	}
	name := o.Name
	if name == "" {
		name = "(host name)"
	}
	for _, w := range fatal {
		_, _ = fmt.Fprintf(w, "reshd: executor %s joining %s\n", name, o.Join)
	}
	if ready != nil {
		_, _ = fmt.Fprintf(ready, "reshd: executor %s joining %s\n", name, o.Join)
		_ = ready.Close()
	}
	err := executor.Run(ctx, executor.Config{
		Master: o.Join, Name: o.Name, MaxTasks: o.MaxTasks, MaxCPU: o.MaxCPU,
		KnownOnly: o.KnownOnly, Insecure: o.Insecure, Timeout: o.ExecutorTimeout, Home: os.Getenv("RESH_HOME"),
		Server: cfg, Logger: log,
	})
	if err != nil {
		log.Error("reshd: executor stopped", "err", err)
		for _, w := range fatal {
			_, _ = fmt.Fprintf(w, "reshd: %v\n", err)
		}
		return 1
	}
	return 0
}
