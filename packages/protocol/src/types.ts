export type {
  Envelope, SignedEnvelope, AuthFrame, SendFrame, CursorFrame, ResumeFrame, PingFrame,
  ChallengeFrame, WelcomeFrame, AckFrame, DeliverFrame, ErrorFrame, PongFrame, SignalFrame, WatchFrame, EventFrame, ChatEvent, OpsEvent, OpsEventType, RelayEvent,
  ClientFrame, RelayFrame, Limits,
} from './schemas.ts'
