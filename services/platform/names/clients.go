package names

import "strings"

// A product team's client owns resources of its own, under clients/{client}:
// its webhook endpoints and their deliveries. The server kit binds every
// call of a client method (AUDIENCE_CLIENT) to the client of its token with
// ClientOf, as it binds user methods with UserOf.

// Collection ids under clients/.
const (
	clients    = "clients"
	endpoints  = "endpoints"
	deliveries = "deliveries"
)

// Client formats clients/{client}.
func Client(client string) string { return clients + "/" + client }

// ParseClient reads clients/{client}.
func ParseClient(name string) (string, error) {
	ids, err := match(name, clients, "")
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// ClientOf returns the client that name lives under: {client} of
// clients/{client}[/...]. ok is false for a name outside clients/.
func ClientOf(name string) (client string, ok bool) {
	rest, ok := strings.CutPrefix(name, clients+"/")
	if !ok {
		return "", false
	}
	client, _, _ = strings.Cut(rest, "/")
	return client, client != ""
}

// Endpoint is a webhook endpoint's name: clients/{client}/endpoints/{endpoint}.
type Endpoint struct {
	Client string
	ID     string
}

// String formats clients/{client}/endpoints/{endpoint}.
func (e Endpoint) String() string { return Client(e.Client) + "/" + endpoints + "/" + e.ID }

// Delivery returns the name of the endpoint's delivery id.
func (e Endpoint) Delivery(id string) Delivery { return Delivery{Endpoint: e, ID: id} }

// ParseEndpoint reads clients/{client}/endpoints/{endpoint}.
func ParseEndpoint(name string) (Endpoint, error) {
	ids, err := match(name, clients, "", endpoints, "")
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{Client: ids[0], ID: ids[1]}, nil
}

// Delivery is a webhook delivery's name:
// clients/{client}/endpoints/{endpoint}/deliveries/{delivery}.
type Delivery struct {
	Endpoint Endpoint
	ID       string
}

// String formats clients/{client}/endpoints/{endpoint}/deliveries/{delivery}.
func (d Delivery) String() string { return d.Endpoint.String() + "/" + deliveries + "/" + d.ID }

// ParseDelivery reads clients/{client}/endpoints/{endpoint}/deliveries/{delivery}.
func ParseDelivery(name string) (Delivery, error) {
	ids, err := match(name, clients, "", endpoints, "", deliveries, "")
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{Endpoint: Endpoint{Client: ids[0], ID: ids[1]}, ID: ids[2]}, nil
}
