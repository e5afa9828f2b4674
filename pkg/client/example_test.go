package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/pkg/client"
)

// The examples talk to a real Gatehouse that TestMain starts: gatehouseURL
// is its address, with an app (exampleApp) and a channel open to it
// (exampleChannel).
var (
	gatehouseURL   string
	exampleApp     struct{ AppKey, AppSecret string }
	exampleChannel string
)

func ExampleEngine() {
	e := client.NewEngine(client.EngineConfig{BaseURL: gatehouseURL, Name: "root", Password: "Root-Passw0rd!"})

	// Every request carries a valid token: the client logs in on first
	// use, again shortly before the token expires, and after a 401.
	req, _ := http.NewRequest("GET", gatehouseURL+"/v4/self-perms", nil)
	resp, err := e.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

func ExampleEngine_gateway() {
	// The same client signs requests to a Service Center behind
	// Gatehouse's gateway mode (gatehouse serve --upstream /v4/=...).
	e := client.NewEngine(client.EngineConfig{
		BaseURL: "https://gatehouse.example:30100", Name: "deployer", Password: "...", TokenTTL: time.Hour,
	})
	req, _ := http.NewRequest("GET", "https://gatehouse.example:30100/v4/default/registry/microservices", nil)
	resp, err := e.Do(req)
	if err != nil {
		log.Print(err)
		return
	}
	resp.Body.Close()
}

func ExampleFabric_Session() {
	fabric := client.NewFabric(client.FabricConfig{
		BaseURL: gatehouseURL, AppKey: exampleApp.AppKey, AppSecret: exampleApp.AppSecret,
	})
	s := fabric.Session(client.User{ID: "u42", Name: "Ada", ChannelID: exampleChannel, Locale: "en_US"})

	// Do sends x-app-key, the AccessToken and the ccmessaging-token, and
	// keeps the renewed token Gatehouse returns once the old one expired.
	req, _ := http.NewRequest("GET", gatehouseURL+"/apiaccess/ccmessaging/session", nil)
	resp, err := s.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct{ ResultCode, UserID, Locale string }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.ResultCode, info.UserID, info.Locale)

	if err := s.End(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output: 0 u42 en_US
}
