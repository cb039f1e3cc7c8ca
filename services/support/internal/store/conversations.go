package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

const conversationColumns = `user_id, bank_id, conversation_id, client_id, link, bank_consent_id, state, controller,
	pending_by, pending_metadata, pending_time, agent_display_name, case_id, handovers, assistant_state,
	awaiting_agent_since, last_seq, version, create_time, update_time`

func scanConversation(row scanner) (app.Conversation, error) {
	var c app.Conversation
	var state, controller, assistantState string
	var pendingBy, caseID sql.NullString
	var pendingMeta string
	var pendingTime, awaiting sql.NullInt64
	var created, updated int64
	if err := row.Scan(&c.User, &c.BankID, &c.ID, &c.Client, &c.Link, &c.BankConsentID, &state, &controller,
		&pendingBy, &pendingMeta, &pendingTime, &c.AgentDisplayName, &caseID, &c.Handovers, &assistantState,
		&awaiting, &c.LastSeq, &c.Version, &created, &updated); err != nil {
		return app.Conversation{}, err
	}
	c.State, c.Controller = app.State(state), app.Controller(controller)
	if pendingBy.Valid {
		c.Pending = &app.ControlRequest{RequestedBy: app.Controller(pendingBy.String), Metadata: pendingMeta, Time: storage.FromNullMicros(pendingTime)}
	}
	c.CaseID = caseID.String
	if err := json.Unmarshal([]byte(assistantState), &c.Assistant); err != nil {
		return app.Conversation{}, fmt.Errorf("assistant state: %w", err)
	}
	c.AwaitingAgentSince = storage.FromNullMicros(awaiting)
	c.CreateTime, c.UpdateTime = storage.FromMicros(created), storage.FromMicros(updated)
	return c, nil
}

func oneConversation(row *sql.Row) (app.Conversation, error) {
	c, err := scanConversation(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Conversation{}, app.ErrNotFound
	}
	if err != nil {
		return app.Conversation{}, fmt.Errorf("read conversation: %w", err)
	}
	return c, nil
}

func conversations(ctx context.Context, q storage.Queryer, query string, args ...any) ([]app.Conversation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read conversations: %w", err)
	}
	defer rows.Close()
	var out []app.Conversation
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, fmt.Errorf("read conversations: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read conversations: %w", err)
	}
	return out, nil
}

// conversationArgs are c's mutable columns, in the order of UPDATE's SET.
func conversationArgs(c app.Conversation) ([]any, error) {
	st, err := json.Marshal(c.Assistant)
	if err != nil {
		return nil, fmt.Errorf("assistant state: %w", err)
	}
	var pendingBy sql.NullString
	var pendingMeta string
	var pendingTime sql.NullInt64
	if p := c.Pending; p != nil {
		pendingBy, pendingMeta, pendingTime = sql.NullString{String: string(p.RequestedBy), Valid: true}, p.Metadata, storage.NullMicros(p.Time)
	}
	return []any{string(c.State), string(c.Controller), pendingBy, pendingMeta, pendingTime, c.AgentDisplayName,
		storage.NullString(c.CaseID), c.Handovers, string(st), storage.NullMicros(c.AwaitingAgentSince), c.LastSeq, c.Version,
		storage.Micros(c.UpdateTime)}, nil
}

// Conversation reads one conversation.
func (s *Store) Conversation(ctx context.Context, k app.ConversationKey) (app.Conversation, error) {
	return oneConversation(s.db.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3`, k.User, k.BankID, k.ID))
}

// ListConversations reads one page of the user's conversations, most
// recently updated first: a keyset read backwards along
// conversations_by_update. The position's ID is "<bank_id>~<id>".
func (s *Store) ListConversations(ctx context.Context, user string, f app.ConversationFilter, after *pagetoken.Position, limit int) ([]app.Conversation, error) {
	var b strings.Builder
	args := []any{user}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + conversationColumns + ` FROM conversations WHERE user_id = $1`)
	if f.State != "" {
		b.WriteString(` AND state = ` + arg(string(f.State)))
	}
	if after != nil {
		bank, id, _ := strings.Cut(after.ID, "~")
		t := arg(storage.Micros(after.Time))
		bk := arg(bank)
		b.WriteString(` AND (update_time < ` + t + ` OR (update_time = ` + t + ` AND (bank_id < ` + bk +
			` OR (bank_id = ` + bk + ` AND conversation_id < ` + arg(id) + `))))`)
	}
	b.WriteString(` ORDER BY update_time DESC, bank_id DESC, conversation_id DESC LIMIT ` + strconv.Itoa(limit))
	return conversations(ctx, s.db, b.String(), args...)
}

// IdleConversations reads OPEN conversations the agent holds with a user
// message unanswered since before t.
func (s *Store) IdleConversations(ctx context.Context, before time.Time, limit int) ([]app.ConversationKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id, bank_id, conversation_id FROM conversations
		WHERE awaiting_agent_since < $1 AND state = $2 AND controller = $3 ORDER BY awaiting_agent_since LIMIT `+strconv.Itoa(limit),
		storage.Micros(before), string(app.StateOpen), string(app.ControllerBankAgent))
	if err != nil {
		return nil, fmt.Errorf("read idle conversations: %w", err)
	}
	defer rows.Close()
	var out []app.ConversationKey
	for rows.Next() {
		var k app.ConversationKey
		if err := rows.Scan(&k.User, &k.BankID, &k.ID); err != nil {
			return nil, fmt.Errorf("read idle conversations: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read idle conversations: %w", err)
	}
	return out, nil
}

// Recall reads a CreateConversation idempotency key.
func (s *Store) Recall(ctx context.Context, user, client, key string) (app.IdempotencyKey, error) {
	k := app.IdempotencyKey{User: user, Client: client, Key: key}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT request_hash, bank_id, conversation_id, create_time FROM conversation_keys
		WHERE user_id = $1 AND client_id = $2 AND idem_key = $3`, user, client, key).
		Scan(&k.RequestHash, &k.Conversation.BankID, &k.Conversation.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return app.IdempotencyKey{}, app.ErrNotFound
	}
	if err != nil {
		return app.IdempotencyKey{}, fmt.Errorf("read idempotency key: %w", err)
	}
	k.Conversation.User, k.CreateTime = user, storage.FromMicros(created)
	return k, nil
}

// DeleteExpired deletes old messages and idempotency keys.
func (s *Store) DeleteExpired(ctx context.Context, messagesBefore, keysBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM messages WHERE create_time < $1`, storage.Micros(messagesBefore))
	if err != nil {
		return 0, fmt.Errorf("delete expired messages: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired messages: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM conversation_keys WHERE create_time < $1`, storage.Micros(keysBefore)); err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return int(n), nil
}

// LockConversation reads and locks a conversation.
func (t *tx) LockConversation(ctx context.Context, k app.ConversationKey) (app.Conversation, error) {
	return oneConversation(t.q.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3`+t.db.ForUpdate(), k.User, k.BankID, k.ID))
}

// ConversationByCase reads and locks the conversation of a bank's case.
func (t *tx) ConversationByCase(ctx context.Context, bankID, caseID string) (app.Conversation, error) {
	return oneConversation(t.q.QueryRowContext(ctx, `SELECT `+conversationColumns+` FROM conversations
		WHERE bank_id = $1 AND case_id = $2`+t.db.ForUpdate(), bankID, caseID))
}

// LinkConversations reads and locks the user's conversations opened under
// link.
func (t *tx) LinkConversations(ctx context.Context, user, link string) ([]app.Conversation, error) {
	return conversations(ctx, t.q, `SELECT `+conversationColumns+` FROM conversations
		WHERE user_id = $1 AND link = $2 ORDER BY bank_id, conversation_id`+t.db.ForUpdate(), user, link)
}

// InsertConversation stores a new conversation.
func (t *tx) InsertConversation(ctx context.Context, c app.Conversation) error {
	args, err := conversationArgs(c)
	if err != nil {
		return err
	}
	args = append([]any{c.User, c.BankID, c.ID, c.Client, c.Link, c.BankConsentID, storage.Micros(c.CreateTime)}, args...)
	_, err = t.q.ExecContext(ctx, `INSERT INTO conversations (user_id, bank_id, conversation_id, client_id, link, bank_consent_id,
		create_time, state, controller, pending_by, pending_metadata, pending_time, agent_display_name, case_id, handovers,
		assistant_state, awaiting_agent_since, last_seq, version, update_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`, args...)
	if err != nil {
		return conflict("insert conversation", err)
	}
	return nil
}

// UpdateConversation writes a conversation's mutable fields.
func (t *tx) UpdateConversation(ctx context.Context, c app.Conversation) error {
	args, err := conversationArgs(c)
	if err != nil {
		return err
	}
	args = append(args, c.User, c.BankID, c.ID)
	res, err := t.q.ExecContext(ctx, `UPDATE conversations SET state = $1, controller = $2, pending_by = $3, pending_metadata = $4,
		pending_time = $5, agent_display_name = $6, case_id = $7, handovers = $8, assistant_state = $9, awaiting_agent_since = $10,
		last_seq = $11, version = $12, update_time = $13
		WHERE user_id = $14 AND bank_id = $15 AND conversation_id = $16`, args...)
	if err != nil {
		return conflict("update conversation", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update conversation: %w", err)
	} else if n == 0 {
		return app.ErrNotFound
	}
	return nil
}

// DeleteConversation deletes a conversation with its messages and keys.
func (t *tx) DeleteConversation(ctx context.Context, k app.ConversationKey) error {
	for _, table := range []string{"messages", "conversation_keys", "conversations"} {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3`,
			k.User, k.BankID, k.ID); err != nil {
			return fmt.Errorf("delete conversation: %w", err)
		}
	}
	return nil
}

// Remember stores a CreateConversation idempotency key.
func (t *tx) Remember(ctx context.Context, k app.IdempotencyKey) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO conversation_keys (user_id, client_id, idem_key, request_hash, bank_id,
		conversation_id, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.User, k.Client, k.Key, k.RequestHash, k.Conversation.BankID, k.Conversation.ID, storage.Micros(k.CreateTime))
	if err != nil {
		return conflict("insert idempotency key", err)
	}
	return nil
}
