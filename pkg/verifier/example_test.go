package verifier_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/pkg/verifier"
)

// gatehouseURL is the address of the Gatehouse the examples ask for keys;
// exampleToken is an engine token of its root account. TestMain sets both.
var gatehouseURL, exampleToken string

func TestMain(m *testing.M) {
	os.Exit(runWithGatehouse(m))
}

func ExampleVerifier_Verify() {
	v, err := verifier.New(context.Background(), verifier.Options{
		JWKSURL: gatehouseURL + "/.well-known/jwks.json",
	})
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(context.Background(), exampleToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Account, claims.Roles)
	// Output: root [admin]
}

func ExampleVerifier_Middleware() {
	v, err := verifier.New(context.Background(), verifier.Options{
		JWKSURL: "https://gatehouse.example:30100/.well-known/jwks.json",
		// Tokens of a rotated key are accepted as soon as Gatehouse
		// publishes it; the set is fetched again at most this often.
		MinRefreshInterval: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := verifier.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s\n", claims.Account)
	})
	// Requests without a valid engine token get Gatehouse's 401 bodies.
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", v.Middleware(hello)))
}
