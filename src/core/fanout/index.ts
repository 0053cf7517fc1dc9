export {drainOutbox, startFanoutWorkers, fanoutSettings, FANOUT_DEFAULTS} from './worker.js'
export type {DeliveryEvent, DrainProgress, DrainResult, FanoutEventType, FanoutHooks, FanoutOptions, FanoutWorkersHandle} from './worker.js'
export {listNotifications, type Notification} from './feed.js'
export {fanoutBacklog, fanoutStatus, type EventProgress, type FanoutBacklog, type FanoutStatus} from './status.js'
