package snapshot

import (
	"sync"
	"testing"
)

// Two sources updating concurrently must never lose each other's fields.
func TestUpdateSerialisesWriters(t *testing.T) {
	s := NewStore()
	const n = 500
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				s.Update(func(cur *Snapshot) *Snapshot {
					next := *cur
					next.Seq++
					if w == 0 {
						next.Board.Slot++
					} else {
						next.CollectDuration++
					}
					return &next
				})
			}
		}(w)
	}
	wg.Wait()
	got := s.Load()
	if got.Seq != 2*n || got.Board.Slot != n || got.CollectDuration != n {
		t.Fatalf("lost updates: seq=%d slot=%d dur=%d, want %d/%d/%d", got.Seq, got.Board.Slot, got.CollectDuration, 2*n, n, n)
	}
}

func TestChangedWakesOnSwap(t *testing.T) {
	s := NewStore()
	ch := s.Changed()
	s.Update(func(cur *Snapshot) *Snapshot { return nil })
	select {
	case <-ch:
		t.Fatal("Update returning nil must publish nothing")
	default:
	}
	s.Update(func(cur *Snapshot) *Snapshot { n := *cur; n.Seq = 7; return &n })
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by a swap")
	}
	if s.Load().Seq != 7 {
		t.Fatalf("seq = %d", s.Load().Seq)
	}
}
