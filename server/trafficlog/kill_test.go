package trafficlog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// killHelperEnv names the storage directory when the test binary runs as
// the helper process of TestKilledProcessLosesNoAcknowledgedRecord.
const killHelperEnv = "CARRYON_TRAFFICLOG_KILL_HELPER_DIR"

// TestKillHelper is not a test: run by TestKilledProcessLosesNoAcknowledgedRecord
// in a child process, it serves POST /append?id=ID (answered 200 only
// once the sample is acknowledged) until it is killed.
func TestKillHelper(t *testing.T) {
	dir := os.Getenv(killHelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	l, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("listening", ln.Addr())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if _, err := l.Append(r.Context(), chatSample(id, "alice", "answer to "+id)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
}

// TestKilledProcessLosesNoAcknowledgedRecord sends records from several
// clients to a child process, kills it with SIGKILL the moment a number
// of them have been answered, reopens its storage and finds every
// answered record.
func TestKilledProcessLosesNoAcknowledgedRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killed atomic.Bool
	defer func() {
		if !killed.Load() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/append?id="
	case <-time.After(30 * time.Second):
		t.Fatal("the helper process did not start listening")
	}

	const clients, target = 4, 200
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		once  sync.Once
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k%d-%d", c, i)
				res, err := client.Post(url+id, "text/plain", nil)
				if err != nil {
					return // the process is gone
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				n := len(acked)
				mu.Unlock()
				if n >= target {
					once.Do(func() {
						_ = cmd.Process.Signal(syscall.SIGKILL)
						killed.Store(true)
						close(stop)
					})
				}
			}
		}()
	}
	wg.Wait()
	_ = cmd.Wait()
	if !killed.Load() {
		t.Fatalf("the helper died before %d records were answered (%d were)", target, len(acked))
	}

	l := openTest(t, dir)
	b, err := l.Read(context.Background(), "alice", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, ex := range b.Examples {
		stored[ex.ID] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range acked {
		if !stored[id] {
			t.Errorf("record %s was answered but is not in the log after the kill", id)
		}
	}
	t.Logf("%d records answered before SIGKILL, %d in the log after it", len(acked), len(stored))
}
