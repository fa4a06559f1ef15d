// Hand-tuned positions for the machines this agent ships. Keys are state paths; values are the
// centres of atomic states (compound boxes wrap their children). `bends` curve an edge sideways
// (pixels, positive = to the left of its direction) so long edges go around the boxes instead of
// through them. A machine that gains a state the table does not know still draws: unknown
// top-level states go to a grid below, anything else falls back to the generic layout.

export const NODE_W = 136
export const NODE_H = 38

export const FIXED_LAYOUTS = {
  collector: {
    nodes: {
      idle: [100, 80],
      starting: [330, 80],
      running: [590, 80],
      stopping: [860, 80],
      stopped: [1170, 80],
      // Children of a compound stacked vertically: the arrow between them has room for its labels.
      'restarting.waiting': [330, 280],
      'restarting.releasing': [330, 420],
      'failed.releasing': [700, 280],
      'failed.released': [700, 420],
      gaveUp: [1000, 420],
      // Held by a one_for_all / rest_for_one group restart until its turn in start order.
      'suspended.releasing': [100, 280],
      'suspended.held': [100, 420],
    },
    bends: {
      'idle>stopped': 110,
      'starting>stopping': 45,
      'stopped>starting': -75,
      'starting>failed': -30,
      'running>restarting': 20,
      'restarting.releasing>stopping': 60,
      'restarting.waiting>stopped': 25,
      // Opposite arrows between starting and restarting: apart, so their labels do not collide.
      'starting>restarting': 45,
      'restarting.waiting>starting': 45,
    },
    // Where along its arrow a label sits (0..1, default the middle), to keep crossing labels apart.
    labelAt: {
      'running>restarting': 0.28,
      'starting>failed': 0.64,
    },
    // STOP and SUSPEND edges exist from almost every state; drawn quieter so the failure path reads first.
    minorEvents: ['STOP', 'SUSPEND'],
  },
  supervisor: {
    nodes: {
      idle: [90, 70],
      starting: [310, 70],
      running: [540, 70],
      stopping: [780, 70],
      stopped: [1000, 70],
      escalated: [660, 190],
    },
    bends: {
      'idle>stopping': 80,
      'starting>stopping': 40,
    },
    minorEvents: [],
  },
}
