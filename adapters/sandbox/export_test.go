package sandbox

// CardBlocked reports whether the card with the bank id cardID is blocked,
// for this package's tests only (bankbridge sees it through ListCards).
func (b *Bank) CardBlocked(cardID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cardBlocks[cardID] != nil
}
