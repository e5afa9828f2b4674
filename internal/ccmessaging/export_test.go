package ccmessaging

// HandedOver returns how many renewals have a token handed over to the
// session table: none once every renewal has returned.
func (s *Service) HandedOver() int {
	s.sessions.handedMu.Lock()
	defer s.sessions.handedMu.Unlock()
	return len(s.sessions.handed)
}
