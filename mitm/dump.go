package mitm

// hexDigits are the digits of the hex dump.
const hexDigits = "0123456789abcdef"

// appendDump appends a hex dump of b, read at input offset off of
// direction d of connection id: a header line, then 16 bytes a line with
// their offset and their printable characters.
func appendDump(dst []byte, id uint64, d dir, off int64, b []byte) []byte {
	arrow := "client>server"
	if d == dirDown {
		arrow = "server>client"
	}
	dst = append(dst, "# conn "...)
	dst = appendInt(dst, int64(id))
	dst = append(dst, ' ')
	dst = append(dst, d.String()...)
	dst = append(dst, ' ')
	dst = append(dst, arrow...)
	dst = append(dst, " offset "...)
	dst = appendInt(dst, off)
	dst = append(dst, " length "...)
	dst = appendInt(dst, int64(len(b)))
	dst = append(dst, '\n')
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		o := uint64(off) + uint64(i)
		for s := 28; s >= 0; s -= 4 {
			dst = append(dst, hexDigits[o>>uint(s)&0xf])
		}
		dst = append(dst, ' ', ' ')
		for j := 0; j < 16; j++ {
			if j == 8 {
				dst = append(dst, ' ')
			}
			if j < len(line) {
				dst = append(dst, hexDigits[line[j]>>4], hexDigits[line[j]&0xf], ' ')
			} else {
				dst = append(dst, ' ', ' ', ' ')
			}
		}
		dst = append(dst, ' ', '|')
		for _, c := range line {
			if c < 32 || c > 126 {
				c = '.'
			}
			dst = append(dst, c)
		}
		dst = append(dst, '|', '\n')
	}
	return dst
}

func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}

// dump writes the hex dump of a chunk read by a pump.
func (p *Proxy) dump(id uint64, d dir, off int64, b []byte) {
	out := appendDump(make([]byte, 0, 80+len(b)*5), id, d, off, b)
	p.outMu.Lock()
	defer p.outMu.Unlock()
	p.cfg.Dump.Write(out)
}
