"""ur5_sim: a simulated UR5e (MuJoCo Menagerie) on ur_robot_driver's ROS 2 interface."""
