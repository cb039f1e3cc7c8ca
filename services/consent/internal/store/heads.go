package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"github.com/bankbridge/bankbridge/services/consent/internal/app"
)

// signatureColumns are a chain head's signature (app.HeadSignature) in
// access_log_heads, in the order of its fields Sequence, KeyVersion, Value.
const signatureColumns = `signed_sequence, key_version, signature`

// signMoved gives each moved head the signature made of it. A signature of
// any other head (another sequence, a user not in the batch) is refused:
// it would vouch for entries it does not cover.
func signMoved(moved map[string]app.ChainHead, sigs map[string]app.HeadSignature) error {
	for u, sig := range sigs {
		h, ok := moved[u]
		if !ok || sig.Sequence != h.Sequence || sig.Value == "" {
			return fmt.Errorf("append access: a signature of sequence %d of user %q, which is not the head the batch moved it to", sig.Sequence, u)
		}
		h.Signed = sig
		moved[u] = h
	}
	return nil
}

// UnsignedHeads lists, in order, the users after the given one whose chain
// head is ahead of its signature.
func (q queries) UnsignedHeads(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT user_id FROM access_log_heads
		WHERE signed_sequence < sequence AND user_id > $1 ORDER BY user_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("select unsigned chain heads: %w", err)
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("select unsigned chain heads: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select unsigned chain heads: %w", err)
	}
	return users, nil
}

// SignHeads locks the chain heads of users, in user order as AppendAccess
// does, reads each unsigned one's entries from the one its signature
// covers (from the first when none) to the head, hands both to sign, and
// stores the signatures sign returns, each of which must cover its head as
// locked.
func (s *Store) SignHeads(ctx context.Context, users []string,
	sign func(heads map[string]app.ChainHead, tails map[string][]app.AccessEntry) (map[string]app.HeadSignature, error)) error {
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	if len(users) == 0 {
		return nil
	}
	return s.retry(ctx, func() error {
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			heads, err := lockHeads(ctx, tx, users)
			if err != nil {
				return err
			}
			read := queries{q: tx, db: s.db}
			tails := map[string][]app.AccessEntry{}
			for _, u := range users {
				h := heads[u]
				if h.Signed.Sequence >= h.Sequence {
					continue
				}
				// Entries past the head too, if any, so that sign sees them.
				tail, err := read.selectAccess(ctx, `WHERE user_id = $1 AND sequence >= $2 ORDER BY sequence`, u, max(1, h.Signed.Sequence))
				if err != nil {
					return err
				}
				tails[u] = tail
			}
			sigs, err := sign(maps.Clone(heads), tails)
			if err != nil {
				return err
			}
			signed := make(map[string]app.ChainHead, len(sigs))
			for u, sig := range sigs {
				h, ok := heads[u]
				if !ok || sig.Sequence != h.Sequence || sig.Value == "" {
					return fmt.Errorf("sign chain heads: a signature of sequence %d of user %q, which is not its head", sig.Sequence, u)
				}
				h.Signed = sig
				signed[u] = h
			}
			return moveHeads(ctx, tx, s.db.Dialect(), signed)
		})
	})
}

// StoreHeadSignatures stores each signature made after its append
// committed, on the head it was made of: the update matches the head's
// sequence and hash, and a head signed up to there already (by
// SignPendingHeads, or another replica) keeps its signature.
func (s *Store) StoreHeadSignatures(ctx context.Context, heads map[string]app.ChainHead) ([]string, error) {
	users := slices.Sorted(maps.Keys(heads))
	var stored []string
	err := s.retry(ctx, func() error {
		stored = stored[:0]
		return s.db.InTx(ctx, func(tx *sql.Tx) error {
			// Parsed once, run per head (see execEach).
			stmt, err := tx.PrepareContext(ctx, `UPDATE access_log_heads SET signed_sequence = $1, key_version = $2, signature = $3
				WHERE user_id = $4 AND sequence = $5 AND hash = $6 AND signed_sequence < $5`)
			if err != nil {
				return fmt.Errorf("store chain head signatures: %w", err)
			}
			defer stmt.Close()
			for _, u := range users {
				h := heads[u]
				if h.Signed.Sequence != h.Sequence || h.Signed.Value == "" {
					return fmt.Errorf("store chain head signatures: a signature of sequence %d of user %q, which is not the head's", h.Signed.Sequence, u)
				}
				res, err := stmt.ExecContext(ctx, h.Signed.Sequence, h.Signed.KeyVersion, h.Signed.Value, u, h.Sequence, h.Hash)
				if err != nil {
					return fmt.Errorf("store chain head signatures: %w", err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("store chain head signatures: %w", err)
				} else if n > 0 {
					stored = append(stored, u)
				}
			}
			return nil
		})
	})
	return stored, err
}
