package isccvdb

import "sync"

// handle guards a library handle (P: a pointer to an opaque C struct)
// shared by goroutines: calls run under the read lock, close takes the
// write lock (so it waits for calls in flight) and later calls get
// ErrClosed. Index and Store both hold one.
type handle[P comparable] struct {
	mu  sync.RWMutex
	ptr P
}

// with runs f with the live handle under the read lock.
func (g *handle[P]) with(f func(h P) error) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var closed P
	if g.ptr == closed {
		return ErrClosed
	}
	return f(g.ptr)
}

// close releases the handle once, after the calls in flight; closing
// twice is fine.
func (g *handle[P]) close(release func(h P) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var closed P
	if g.ptr == closed {
		return nil
	}
	h := g.ptr
	g.ptr = closed
	return release(h)
}
