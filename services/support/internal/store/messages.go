package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/bankbridge/bankbridge/services/platform/pagetoken"
	"github.com/bankbridge/bankbridge/services/platform/storage"
	"github.com/bankbridge/bankbridge/services/support/internal/app"
)

const messageColumns = `user_id, bank_id, conversation_id, seq, message_id, role, sender_display_name, text,
	client_message_id, postback_payload, postback_title, quick_replies, bank_message_id, create_time`

func scanMessage(row scanner) (app.Message, error) {
	var m app.Message
	var role, quick string
	var clientID, payload, title, bankID sql.NullString
	var created int64
	if err := row.Scan(&m.Conversation.User, &m.Conversation.BankID, &m.Conversation.ID, &m.Seq, &m.ID, &role,
		&m.SenderDisplayName, &m.Text, &clientID, &payload, &title, &quick, &bankID, &created); err != nil {
		return app.Message{}, err
	}
	m.Role = app.Role(role)
	m.ClientMessageID, m.BankMessageID = clientID.String, bankID.String
	if payload.Valid {
		m.Postback = &app.Postback{Payload: payload.String, Title: title.String}
	}
	if quick != "" {
		if err := json.Unmarshal([]byte(quick), &m.QuickReplies); err != nil {
			return app.Message{}, fmt.Errorf("quick replies: %w", err)
		}
	}
	m.CreateTime = storage.FromMicros(created)
	return m, nil
}

func messages(ctx context.Context, q storage.Queryer, query string, args ...any) ([]app.Message, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var out []app.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return out, nil
}

func oneMessage(row *sql.Row) (app.Message, error) {
	m, err := scanMessage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return app.Message{}, app.ErrNotFound
	}
	if err != nil {
		return app.Message{}, fmt.Errorf("read message: %w", err)
	}
	return m, nil
}

// ListMessages reads one page of a conversation's messages, newest first.
func (s *Store) ListMessages(ctx context.Context, k app.ConversationKey, after *pagetoken.Position, limit int) ([]app.Message, error) {
	query := `SELECT ` + messageColumns + ` FROM messages WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3`
	args := []any{k.User, k.BankID, k.ID}
	if after != nil {
		query += ` AND seq < $4`
		args = append(args, after.Seq)
	}
	return messages(ctx, s.db, query+` ORDER BY seq DESC LIMIT `+strconv.Itoa(limit), args...)
}

// Message reads one message.
func (s *Store) Message(ctx context.Context, k app.ConversationKey, id string) (app.Message, error) {
	return oneMessage(s.db.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3 AND message_id = $4`, k.User, k.BankID, k.ID, id))
}

// MessageByClientID reads the user's message with a client message id.
func (s *Store) MessageByClientID(ctx context.Context, k app.ConversationKey, clientMessageID string) (app.Message, error) {
	return oneMessage(s.db.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3 AND client_message_id = $4`, k.User, k.BankID, k.ID, clientMessageID))
}

// InsertMessage stores a message.
func (t *tx) InsertMessage(ctx context.Context, m app.Message) error {
	quick := ""
	if len(m.QuickReplies) > 0 {
		b, err := json.Marshal(m.QuickReplies)
		if err != nil {
			return fmt.Errorf("quick replies: %w", err)
		}
		quick = string(b)
	}
	var payload, title sql.NullString
	if m.Postback != nil {
		payload, title = sql.NullString{String: m.Postback.Payload, Valid: true}, sql.NullString{String: m.Postback.Title, Valid: true}
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO messages (user_id, bank_id, conversation_id, seq, message_id, role,
		sender_display_name, text, client_message_id, postback_payload, postback_title, quick_replies, bank_message_id, create_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		m.Conversation.User, m.Conversation.BankID, m.Conversation.ID, m.Seq, m.ID, string(m.Role), m.SenderDisplayName, m.Text,
		storage.NullString(m.ClientMessageID), payload, title, quick, storage.NullString(m.BankMessageID), storage.Micros(m.CreateTime))
	if err != nil {
		return conflict("insert message", err)
	}
	return nil
}

// MessageByClientID reads the user's message with a client message id.
func (t *tx) MessageByClientID(ctx context.Context, k app.ConversationKey, clientMessageID string) (app.Message, error) {
	return oneMessage(t.q.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3 AND client_message_id = $4`, k.User, k.BankID, k.ID, clientMessageID))
}

// HasBankMessage reports whether an agent's message is stored.
func (t *tx) HasBankMessage(ctx context.Context, k app.ConversationKey, bankMessageID string) (bool, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages
		WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3 AND bank_message_id = $4`, k.User, k.BankID, k.ID, bankMessageID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read bank message: %w", err)
	}
	return n > 0, nil
}

// LastMessages reads up to n of the newest messages, oldest first.
func (t *tx) LastMessages(ctx context.Context, k app.ConversationKey, n int) ([]app.Message, error) {
	out, err := messages(ctx, t.q, `SELECT `+messageColumns+` FROM messages WHERE user_id = $1 AND bank_id = $2 AND conversation_id = $3
		ORDER BY seq DESC LIMIT `+strconv.Itoa(n), k.User, k.BankID, k.ID)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
