package executor

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Master: "master.example:4200"}.withDefaults()
	require.NoError(t, err)
	host, _ := os.Hostname()
	if len(host) > maxName {
		host, _, _ = strings.Cut(host, ".")
	}
	assert.Equal(t, host, c.Name)
	assert.Equal(t, runtime.NumCPU(), c.MaxTasks)
	assert.Equal(t, 100.0, c.MaxCPU)
	assert.Equal(t, 30*time.Second, c.Timeout)
	assert.Equal(t, time.Second, c.CPUWindow)
	assert.NotNil(t, c.Logger)
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Master: "m:1", Name: "bad name"}, `bad executor name "bad name": only letters, digits`},
		{Config{Master: "m:1", Name: strings.Repeat("a", 65)}, "1 to 64 characters"},
		{Config{Master: "m:1", MaxTasks: -1}, "-max-tasks -1"},
		{Config{Master: "m:1", MaxCPU: 101}, "-max-cpu 101"},
		{Config{Master: "m:1", MaxCPU: 0.5}, "-max-cpu 0.5"},
		{Config{Master: "master"}, `bad master address "master": want HOST:PORT`},
		{Config{Master: ":4200"}, "want HOST:PORT"},
		{Config{Master: "10.0.0.1:4200", Insecure: true}, "-insecure refuses to join 10.0.0.1:4200"},
	} {
		_, err := c.cfg.withDefaults()
		require.Error(t, err, "%+v", c.cfg)
		assert.Contains(t, err.Error(), c.want)
	}
	for _, addr := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1"} {
		_, err := Config{Master: addr, Name: "x", Insecure: true}.withDefaults()
		assert.NoError(t, err, addr)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "node-1", "local-3", "host.example.com", "A_b.C-9", strings.Repeat("x", 64)} {
		assert.NoError(t, ValidName(ok), ok)
	}
	for _, bad := range []string{"", "a b", "é", "a/b", "a:b", strings.Repeat("x", 65)} {
		assert.Error(t, ValidName(bad), bad)
	}
}

// TestRunBadConfig: Run returns a bad configuration at once.
func TestRunBadConfig(t *testing.T) {
	err := Run(t.Context(), Config{Master: "nowhere"})
	assert.ErrorContains(t, err, "bad master address")
}
