package storetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

const (
	crashDirEnv   = "GATEHOUSE_STORETEST_CRASH_DIR"
	crashRoundEnv = "GATEHOUSE_STORETEST_CRASH_ROUND"
	crashCounter  = "crash/counter"
	crashRounds   = 3
	crashWriters  = 4
	// crashChildLimit ends a writer process that was never killed.
	crashChildLimit = time.Minute
)

// RunCrash checks that every acknowledged write survives a SIGKILL of the
// process that made it. The test calling RunCrash is re-executed as a
// child process (same binary, -test.run selecting that test, and an
// environment variable telling RunCrash to act as the writer): the child
// opens the store in a shared directory and writes a stream of Puts and
// Updates from several goroutines, printing each key and value only after
// its write returned. The parent kills the child mid-stream, reopens the
// store and checks that every acknowledged write is there. This is
// repeated a few times on the same directory.
func RunCrash(t *testing.T, open OpenFunc) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, open, dir, os.Getenv(crashRoundEnv))
		return
	}
	dir := t.TempDir()
	acked := map[string]string{}
	var counter int
	for round := range crashRounds {
		acks := crashRound(t, dir, round, 150+150*round)
		for key, value := range acks {
			if key != crashCounter {
				acked[key] = value
				continue
			}
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Fatalf("bad counter acknowledgement %q", value)
			}
			counter = max(counter, n)
		}
		verifyCrash(t, open(t, dir), acked, counter)
	}
}

// crashRound runs one writer process, kills it after it acknowledged
// killAfter writes and returns every write it acknowledged.
func crashRound(t *testing.T, dir string, round, killAfter int) map[string]string {
	return KillChild(t, []string{crashDirEnv + "=" + dir, crashRoundEnv + "=" + strconv.Itoa(round)}, killAfter)
}

// KillChild runs the calling test again as a child process (the same
// binary, -test.run selecting exactly that test) with env added to its
// environment, reads the acknowledgements the child prints with Ack,
// kills the child with SIGKILL once it has acknowledged killAfter keys
// and returns every acknowledgement read (the last value of each key).
// The child must keep acknowledging until it is killed; env tells it that
// it is the child.
func KillChild(t *testing.T, env []string, killAfter int) map[string]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+runPattern(t.Name()))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("kill child: %v", err)
			}
		}
	}
	defer kill()

	acks := map[string]string{}
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break // an unterminated last line was never acknowledged
		}
		if err != nil {
			t.Fatalf("read child output: %v", err)
		}
		if key, value, ok := parseAck(line); ok {
			acks[key] = value
		}
		if len(acks) >= killAfter {
			kill()
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child exited (%v) after %d acknowledgements, before being killed; stderr:\n%s", waitErr, len(acks), stderr.Bytes())
	}
	return acks
}

var ackMu sync.Mutex

// Ack prints, for KillChild, that the write of value under key is done:
// call it only once the write has returned. key and value must not hold
// spaces.
func Ack(key, value string) {
	ackMu.Lock()
	defer ackMu.Unlock()
	fmt.Printf("ack %s %s\n", key, value)
}

// runPattern is a -test.run pattern selecting exactly the named test.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func parseAck(line string) (key, value string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "ack" {
		return "", "", false
	}
	return fields[1], fields[2], true
}

// verifyCrash checks a store reopened after a crash and closes it.
func verifyCrash(t *testing.T, s store.Store, acked map[string]string, counter int) {
	t.Helper()
	defer s.Close()
	for key, value := range acked {
		it, err := s.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("acknowledged write %q lost: %v", key, err)
		}
		if string(it.Value) != value {
			t.Fatalf("acknowledged write %q = %q, want %q", key, it.Value, value)
		}
	}
	it := mustGet(t, s, crashCounter)
	if n, err := strconv.Atoi(string(it.Value)); err != nil || n < counter {
		t.Fatalf("counter = %q, want >= %d", it.Value, counter)
	}
	_, rev := mustList(t, s, "")
	if next := mustPut(t, s, store.Item{Key: "crash/after", Value: []byte("x")}); next.Revision <= rev {
		t.Fatalf("revision after reopen = %d, want > %d", next.Revision, rev)
	}
}

// crashChild writes until it is killed, acknowledging each write on stdout.
func crashChild(t *testing.T, open OpenFunc, dir, round string) {
	s := open(t, dir)
	var wg sync.WaitGroup
	deadline := time.Now().Add(crashChildLimit)
	for g := range crashWriters {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				key, value, err := crashWrite(t, s, round, g, i)
				if err != nil {
					t.Errorf("write %q: %v", key, err)
					return
				}
				Ack(key, value)
			}
		})
	}
	wg.Wait()
}

// crashWrite makes the i-th write of writer g: writer 0 increments the
// counter, the others alternate Puts and Updates of keys of their own.
func crashWrite(t *testing.T, s store.Store, round string, g, i int) (key, value string, err error) {
	if g == 0 {
		it, err := s.Update(t.Context(), crashCounter, increment(crashCounter))
		return crashCounter, string(it.Value), err
	}
	key = fmt.Sprintf("crash/%s/%d/%06d", round, g, i)
	value = fmt.Sprintf("value-%s-%d-%d", round, g, i)
	item := store.Item{Key: key, Value: []byte(value)}
	if i%2 == 0 {
		_, err = s.Put(t.Context(), item)
	} else {
		_, err = s.Update(t.Context(), key, func(*store.Item) (*store.Item, error) { return &item, nil })
	}
	return key, value, err
}
