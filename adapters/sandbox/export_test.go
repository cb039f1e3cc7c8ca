package sandbox

// CardBlocked reports whether the card with the bank id cardID is blocked,
// for this package's tests only: the adapter protocol does not expose it.
func (b *Bank) CardBlocked(cardID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked[cardID]
}
