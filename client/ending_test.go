package client

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"resh/proto"
)

func TestReadExit(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, proto.WriteMessage(&b, proto.TypeResize, proto.Resize{Rows: 1, Cols: 1}))
	require.NoError(t, proto.WriteMessage(&b, proto.TypeExit, proto.Exit{Code: 3}))
	end := readExit(&b)
	require.NoError(t, end.err)
	assert.Equal(t, 3, exitStatus(end.exit))

	end = readExit(bytes.NewReader(nil))
	assert.ErrorIs(t, end.err, io.EOF)

	var bad bytes.Buffer
	require.NoError(t, proto.WriteMessage(&bad, proto.TypeExit, "not an object"))
	end = readExit(&bad)
	assert.ErrorContains(t, end.err, "protocol error")
}
