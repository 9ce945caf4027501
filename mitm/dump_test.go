package mitm

import "testing"

func TestAppendDump(t *testing.T) {
	got := string(appendDump(nil, 3, dirDown, 0x1f, []byte("Hello, world!\n\x00\xffABCD")))
	want := "# conn 3 down server>client offset 31 length 20\n" +
		"0000001f  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 ff  |Hello, world!...|\n" +
		"0000002f  41 42 43 44                                       |ABCD|\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if s := string(appendInt(nil, -120)); s != "-120" {
		t.Fatal(s)
	}
}
