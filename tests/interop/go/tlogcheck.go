// tlogcheck: an independent verifier of a log made by otachain
// (tests/interop/tlog_gen), built on Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog from Debian (GOPATH mode, offline).
//
//	tlogcheck DIR
//
// DIR holds checkpoint, vkeys and proofs as tlog_gen writes them. Checks:
// the checkpoint's log signature (note.Open), its C2SP cosignature/v1 by
// the witness (x/mod's note knows only Ed25519 type 0x01, so the type 0x04
// verifier is written here from the C2SP tlog-cosignature spec), every
// inclusion and consistency proof (tlog.CheckRecord, tlog.CheckTree), and
// that a tampered copy of each is rejected. Prints one line per check and
// exits non-zero on the first failure.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func hash(b64 string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != tlog.HashSize {
		fail("bad hash %q", b64)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

// checkpoint body: origin, size, base64 root (C2SP tlog-checkpoint).
func parseBody(text string) (string, int64, tlog.Hash) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		fail("checkpoint body too short")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size %q", lines[1])
	}
	return lines[0], n, hash(lines[2])
}

// verifyCosig checks a C2SP cosignature/v1 (type 0x04) line of the note.
func verifyCosig(msg []byte, vkey string) (uint64, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return 0, fmt.Errorf("bad vkey")
	}
	name := parts[0]
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 33 || key[0] != 0x04 {
		return 0, fmt.Errorf("not a cosignature/v1 key")
	}
	pub := ed25519.PublicKey(key[1:])
	idsum := sha256.Sum256(append([]byte(name+"\n"), key...))
	i := bytes.Index(msg, []byte("\n\n"))
	if i < 0 {
		return 0, fmt.Errorf("no blank line")
	}
	body := msg[:i+1]
	for _, line := range strings.Split(string(msg[i+2:]), "\n") {
		prefix := "\u2014 " + name + " "
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(line[len(prefix):])
		if err != nil || len(sig) != 4+8+64 {
			return 0, fmt.Errorf("malformed cosignature")
		}
		if !bytes.Equal(sig[:4], idsum[:4]) {
			continue
		}
		t := binary.BigEndian.Uint64(sig[4:12])
		signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), body...)
		if !ed25519.Verify(pub, signed, sig[12:]) {
			return 0, fmt.Errorf("cosignature does not verify")
		}
		return t, nil
	}
	return 0, fmt.Errorf("no cosignature by %s", name)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: tlogcheck DIR")
	}
	dir := os.Args[1]
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fail("%v", err)
	}
	vk, err := os.ReadFile(filepath.Join(dir, "vkeys"))
	if err != nil {
		fail("%v", err)
	}
	vkeys := strings.Split(strings.TrimSpace(string(vk)), "\n")
	logv, err := note.NewVerifier(vkeys[0])
	if err != nil {
		fail("log vkey: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(logv))
	if err != nil {
		fail("checkpoint log signature: %v", err)
	}
	origin, size, root := parseBody(n.Text)
	if origin != logv.Name() {
		fail("origin %q is not the log key's name %q", origin, logv.Name())
	}
	fmt.Printf("ok checkpoint signature origin=%s size=%d\n", origin, size)
	t, err := verifyCosig(msg, vkeys[1])
	if err != nil {
		fail("cosignature: %v", err)
	}
	fmt.Printf("ok cosignature time=%d\n", t)

	// Tampered checkpoint and cosignature must fail.
	bad := bytes.Replace(msg, []byte("\n"+strconv.FormatInt(size, 10)+"\n"),
		[]byte("\n"+strconv.FormatInt(size+1, 10)+"\n"), 1)
	if _, err := note.Open(bad, note.VerifierList(logv)); err == nil {
		fail("a checkpoint with another size verified")
	}
	if _, err := verifyCosig(bad, vkeys[1]); err == nil {
		fail("a cosignature over another size verified")
	}
	fmt.Println("ok tampered checkpoint rejected")

	f, err := os.Open(filepath.Join(dir, "proofs"))
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	checked := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			fail("short proof line")
		}
		at, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			fail("bad number %q", fields[1])
		}
		h := hash(fields[2])
		var proof []tlog.Hash
		for _, p := range fields[3:] {
			proof = append(proof, hash(p))
		}
		tampered := append([]tlog.Hash(nil), proof...)
		switch fields[0] {
		case "inclusion":
			if err := tlog.CheckRecord(tlog.RecordProof(proof), size, root, at, h); err != nil {
				fail("inclusion of %d: %v", at, err)
			}
			if len(tampered) > 0 {
				tampered[len(tampered)/2][0] ^= 1
				if tlog.CheckRecord(tlog.RecordProof(tampered), size, root, at, h) == nil {
					fail("tampered inclusion proof of %d verified", at)
				}
			}
			if tlog.CheckRecord(tlog.RecordProof(proof), size, root, at^1, h) == nil {
				fail("inclusion proof of %d verified for %d", at, at^1)
			}
			fmt.Printf("ok inclusion index=%d hashes=%d (tampered rejected)\n", at, len(proof))
		case "consistency":
			if err := tlog.CheckTree(tlog.TreeProof(proof), size, root, at, h); err != nil {
				fail("consistency from %d: %v", at, err)
			}
			if len(tampered) > 0 {
				tampered[0][31] ^= 0x80
				if tlog.CheckTree(tlog.TreeProof(tampered), size, root, at, h) == nil {
					fail("tampered consistency proof from %d verified", at)
				}
			}
			fmt.Printf("ok consistency from=%d hashes=%d (tampered rejected)\n", at, len(proof))
		default:
			fail("unknown proof line %q", fields[0])
		}
		checked++
	}
	if err := sc.Err(); err != nil {
		fail("%v", err)
	}
	if checked == 0 {
		fail("no proofs checked")
	}
	fmt.Printf("ok %d proofs\n", checked)
}
