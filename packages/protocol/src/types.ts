export type {
  Envelope, AuthFrame, SendFrame, CursorFrame, ResumeFrame, PingFrame,
  ChallengeFrame, WelcomeFrame, AckFrame, DeliverFrame, ErrorFrame, PongFrame,
  ClientFrame, RelayFrame, Limits,
} from './schemas.ts'
