package audit_test

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/bolt"
	"github.com/gatehouse/gatehouse/internal/store/etcd"
	"github.com/gatehouse/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

const (
	// crashChildEnv tells a re-executed test to act as the recording
	// process; its value is the round.
	crashChildEnv = "GATEHOUSE_AUDIT_CRASH_ROUND"
	crashBoltEnv  = "GATEHOUSE_AUDIT_CRASH_DIR"
	crashEtcdEnv  = "GATEHOUSE_AUDIT_CRASH_ENDPOINTS"
	crashRounds   = 3
	crashCallers  = 16
	// crashChildLimit ends a recording process that was never killed.
	crashChildLimit = time.Minute
)

// crashActions are the actions the recording process audits, in turn.
var crashActions = []string{"login", "lockout", "account.create", "account.password", "role.update", "app.secret.rotate", "channel.delete", "key.rotate", "token.revoke"}

// TestRecordSurvivesKill checks that the record of every event whose
// Record call returned survives a SIGKILL of the process: a child process
// records events from many goroutines at once, printing each one after
// Record returned; the parent kills it after a random number of them,
// opens the store and lists the audit records. On bolt the store dies
// with the process; on etcd the member keeps running in the parent.
func TestRecordSurvivesKill(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		dir := os.Getenv(crashBoltEnv)
		if dir == "" {
			dir = t.TempDir()
		}
		runKills(t, crashBoltEnv+"="+dir, func(t *testing.T) store.Store {
			st, err := bolt.Open(filepath.Join(dir, "gatehouse.db"), bolt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
	t.Run("etcd", func(t *testing.T) {
		endpoints := os.Getenv(crashEtcdEnv)
		if endpoints == "" {
			endpoints = strings.Join(etcdtest.Start(t, t.TempDir(), 1).Endpoints(), ",")
		}
		runKills(t, crashEtcdEnv+"="+endpoints, func(t *testing.T) store.Store {
			st, err := etcd.Open(t.Context(), etcd.Config{Endpoints: strings.Split(endpoints, ","), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// runKills runs the rounds of a crash test on the store open opens (in
// the child, records until killed); env tells the child where the store is.
func runKills(t *testing.T, env string, open func(*testing.T) store.Store) {
	if round := os.Getenv(crashChildEnv); round != "" {
		recordUntilKilled(open(t), round)
		return
	}
	acked := map[string]string{}
	for round := range crashRounds {
		killAfter := crashCallers + rand.IntN(300)
		maps.Copy(acked, storetest.KillChild(t, []string{env, fmt.Sprintf("%s=%d", crashChildEnv, round)}, killAfter))
		st := open(t)
		l := audit.New(st, slog.New(slog.DiscardHandler), time.Hour)
		recs, err := l.List(t.Context(), 0)
		l.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]string{}
		for _, r := range recs {
			stored[r.Target] = r.Action
		}
		lost := 0
		for target, action := range acked {
			if stored[target] != action {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged audit records lost", round, lost, len(acked))
		}
	}
}

// recordUntilKilled records events from crashCallers goroutines until the
// process is killed, acknowledging each one once Record returned.
func recordUntilKilled(st store.Store, round string) {
	l := audit.New(st, slog.New(slog.DiscardHandler), time.Hour)
	deadline := time.Now().Add(crashChildLimit)
	var wg sync.WaitGroup
	for g := range crashCallers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				target := fmt.Sprintf("r%s-c%d-%06d", round, g, i)
				action := crashActions[i%len(crashActions)]
				l.Record(audit.Record{Actor: "crash", IP: "127.0.0.1", Action: action, Target: target, Outcome: audit.Success})
				storetest.Ack(target, action)
			}
		})
	}
	wg.Wait()
}
